"""What extractive answers quote, by answer type, on the real knowledge base, index and embedder.

Each test is one of the failures measured on questions nobody tuned for (issue 11), now answered.
"""

from __future__ import annotations

import pytest

from bot.answer.units import section_units
from bot.pipeline import Advisor


def body(answer) -> str:  # noqa: ANN001 - an Answer
    """What the user reads for content: the answer without its sources and related lines."""
    return answer.text.split("**出典**")[0].split("**Sources**")[0]


def cited(answer) -> list[str]:  # noqa: ANN001
    return [c.section_id for c in answer.citations]


def test_units_keep_the_structure_of_the_article(advisor: Advisor) -> None:
    section = next(s for s in advisor.knowledge.sections if s.id == "ai_product_manager#1-機械学習とデータサイエンスの基礎習得")
    units = section_units(section)
    assert [(u.kind, u.label) for u in units] == [("item", "目的"), ("subitem", "書籍"), ("subitem", "オンラインコース")]
    assert units[1].text == "書籍: 『仕事ではじめる機械学習』（オライリー・ジャパン） - 実務でのAI活用の流れが理解できます。"
    salary = next(s for s in advisor.knowledge.sections if s.id == "data_scientist#日本での推定年収dodaopenwork参照")
    rows = [u for u in section_units(salary) if u.kind == "row"]
    assert [u.title for u in rows] == ["ジュニア (0-3年)", "ミドル (3-7年)", "シニア (7年以上/リード)"]
    assert rows[2].text.startswith("経験年数: シニア (7年以上/リード) / 年収範囲 (万円): 1,100〜1,800+ / 特徴: ")


def test_am_i_suited_quotes_the_articles_words_about_who_fits_not_interview_questions(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMに向いている人は？")
    assert cited(answer) == ["ai_product_manager#まとめ"]
    assert "複雑なパズルを解くのが好き" in body(answer) and "質問" not in body(answer)


def test_a_summary_quotes_the_articles_own_summary_first(advisor: Advisor) -> None:
    answer = advisor.ask("データサイエンティストの記事を一言で要約すると？")
    assert cited(answer)[0] == "data_scientist#まとめ"
    assert "組織の次の一手を照らす灯台" in body(answer)


def test_a_follow_up_asks_what_its_own_words_ask(advisor: Advisor) -> None:
    answer = advisor.ask("And the salary?", history=["What does a machine learning engineer do?"])
    assert cited(answer) == ["machine_learning_engineer#日本での推定年収dodaopenwork参照"]
    assert "1,300〜2,200+" in body(answer)


def test_a_salary_for_years_of_experience_quotes_the_row_of_those_years(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMで2年目だと年収はどのくらい？")
    assert cited(answer) == ["ai_product_manager#日本での推定年収dodaopenwork参照"]
    assert "500〜850" in body(answer) and "850〜1,400" not in body(answer)


def test_a_salary_table_is_quoted_with_its_note_on_what_the_figures_are(advisor: Advisor) -> None:
    text = body(advisor.ask("are the pdm salary numbers official statistics or just estimates?"))
    assert "1,200〜2,000+" in text and "公式な統計値ではありません" in text  # the note's first sentence
    assert "英語力などで大きく変わります" not in text  # its other sentences only when asked about
    text = body(advisor.ask("MLエンジニアの年収って英語できると変わる？"))
    assert "整理した目安です" in text and "英語力によって大きく変わります" in text


def test_two_parts_asked_together_are_both_answered(advisor: Advisor) -> None:
    answer = advisor.ask("データサイエンティストの年収と将来性を教えて")
    assert cited(answer)[:2] == ["data_scientist#日本での推定年収dodaopenwork参照",
                                 "data_scientist#データサイエンティストの将来展望と重要性の高まり"]


def test_an_item_of_the_second_part_says_what_it_has_to_do_with_the_first(advisor: Advisor) -> None:
    answer = advisor.ask("外資系のPdMって、日本企業より年収高いんですか？")  # salary, and the employers beside it
    assert "product_manager#日本での就職可能な企業" in cited(answer)
    assert "年収水準は国内企業より高い傾向" in answer.text, answer.text  # the employer's line about pay, not only its first


def test_the_topic_picks_the_row_before_the_cue_asked_with_it(advisor: Advisor) -> None:
    answer = advisor.ask("DSが効果検証とかベイズモデルを作るときに使うライブラリって何がある？")
    assert "PyMC、Stan" in answer.text and "DoWhy" in answer.text, answer.text
    assert "Polars" not in answer.text  # the row named 分析ライブラリ holds the cue word, not the topic
    monitoring = advisor.ask("MLエンジニアは本番モデルの監視にどんなツールを使う？")
    assert "Evidently" in monitoring.text and "vLLM" not in monitoring.text, monitoring.text


def test_a_day_in_the_life_lists_every_duty(advisor: Advisor) -> None:
    answer = advisor.ask("DSの1日ってどんな感じ？")
    assert cited(answer) == ["data_scientist#データサイエンティストとは", "data_scientist#主な業務"]  # what it is, then
    for duty in ("ビジネス課題の定義と分析設計", "探索的データ分析（EDA）と可視化", "分析結果の報告と意思決定の支援"):
        assert duty in body(answer)


def test_the_main_work_says_what_each_duty_involves(advisor: Advisor) -> None:
    # An item's title alone (「データ戦略の立案と獲得」) does not say what one does: each comes with its first line.
    text = body(advisor.ask("AI PMって普段どんな仕事してるの？"))
    assert "データ戦略の立案と獲得 — AIの性能はデータの質と量に依存します。" in text
    assert "モデルの評価指標（KPI）の定義 — ビジネス上の成功指標" in text


def test_books_are_every_book_with_its_publisher(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMになるにはどんな本で勉強すればいい？")
    for book in ("『仕事ではじめる機械学習』（オライリー・ジャパン）", "『AIデザインパターン』（技術評論社）",
                 "『10年戦えるデータ分析入門』（SBクリエイティブ）", "『大規模言語モデル入門』（技術評論社）",
                 "『INSPIRED 顧客を熱狂させる世界標準のプロダクトマネジメント』（日本能率協会マネジメントセンター）"):
        assert book in body(answer)
    assert "目的:" not in body(answer)  # the lines that answer, not the steps' aims
    assert all(sid.startswith("ai_product_manager#") and sid[-1] != "タ" for sid in cited(answer))


def test_a_certification_named_inside_a_longer_line_is_quoted_uncut(advisor: Advisor) -> None:
    answer = advisor.ask("機械学習エンジニアに役立つ資格はありますか？")
    assert "「E資格」" in body(answer) and "…" not in body(answer)


def test_companies_are_every_group(advisor: Advisor) -> None:
    answer = advisor.ask("データサイエンティストはどんな会社で働ける？")
    for group in ("メガベンチャー・Web系企業", "インターネット広告・エンタメ企業", "データ分析専門企業・AI企業",
                  "コンサルティングファーム・SIer", "金融・保険", "製造・ヘルスケア"):
        assert group in body(answer)


def test_a_named_company_type_gets_its_group_in_full_then_the_other_groups(advisor: Advisor) -> None:
    text = body(advisor.ask("メーカー系でもAIプロダクトマネージャーのポジションってあるんでしょうか？"))
    named = "製造・自動車メーカー（トヨタ自動車、ソニー、パナソニックなど） — 自動運転"  # with its description
    assert named in text
    # the rest of the short list follows it, each group by its title alone
    assert text.index(named) < text.index("メガベンチャー・テック企業（楽天、LINEヤフー、メルカリなど）")
    assert "LegalOn Technologies、LayerXなど）" in text and "— 自動運転" not in text.split("メガベンチャー")[1]


def test_an_interview_question_asked_about_is_not_buried_under_the_fourteen_others(advisor: Advisor) -> None:
    text = body(advisor.ask("AI PMの面接でハルシネーションについて聞かれたらどう答える？"))
    assert "Human-in-the-loop" in text and "質問1:" not in text


def test_the_career_path_goes_up_to_the_top(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMのキャリアって最終的にどこまで上がれる？")
    assert "CPO / CPTO" in body(answer) and "アソシエイトAI PM" in body(answer)


def test_an_item_asked_about_is_quoted_whole(advisor: Advisor) -> None:
    # 「順番」 points to the prioritisation duty; the frameworks are its second sentence, the rule its third.
    text = body(advisor.ask("PdMってやりたいことが山ほどある中で、どうやって順番決めてるの？"))
    assert "RICEスコアやKano分析" in text and "「やらないこと」を明示する" in text


def test_a_definition_adds_the_sentence_nearest_to_a_topic_of_the_questions_own(advisor: Advisor) -> None:
    # The title meaning something else at every company is the definition's fourth sentence.
    text = body(advisor.ask("What is a data scientist in a Japanese company, really? "
                            "The title seems to mean something different at every place I interview."))
    assert "肩書きが指す範囲が企業によって大きく異なります" in text
    plain = advisor.ask("AI PMって一言でいうと何？")  # no topic beyond the definition: its two sentences only
    assert "不確実性の海を航海するオーケストラの指揮者" in body(plain) and "ChatGPTに代表される" not in body(plain)


def test_a_rung_asked_in_a_conversation_about_changing_careers_gets_the_ladder_before_the_steps(advisor: Advisor) -> None:
    # The conversation asks how to start (the learning steps); the ladder ranked first, so it is shown too.
    answer = advisor.ask("シニアになると何を任されるようになるんでしょうか？",
                         history=["AIプロダクトマネージャーに転職したいと考えています"])
    text = body(answer)
    assert answer.retrieval.analysis.aspect.name == "start"
    assert "複数プロダクトを跨ぐAI基盤の構築" in text and "1. 機械学習とデータサイエンスの基礎習得" in text


def test_the_career_path_says_where_else_it_leads_beside_the_ladder(advisor: Advisor) -> None:
    # The ladder is one way up; the part's closing lines name the sideways moves (「…への転身」).
    text = body(advisor.ask("As a data scientist, which other jobs could I move into later?"))
    assert "CDO（最高データ責任者）" in text  # the ladder, to its top
    assert "本番システムの実装に強い関心があれば機械学習エンジニア" in text


def test_a_rung_asked_about_shows_the_ladder_up_to_the_next_one(advisor: Advisor) -> None:
    answer = advisor.ask("MLエンジニアのシニアの次は？")
    text = body(answer)
    assert "シニアMLエンジニア / テックリード" in text and "スタッフ / プリンシパルMLエンジニア" in text
    assert "CTO / VP of AI" not in text


def test_the_interview_question_asked_about_is_the_one_quoted(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMの面接でハルシネーション対策を聞かれたら何て答えればいい？")
    text = body(answer)
    assert "ハルシネーション（幻覚）" in text and "RAG（検索拡張生成）の導入" in text  # the question and its point
    assert "コールドスタート" not in text


def test_a_salary_comparison_sets_the_two_salary_tables_side_by_side(advisor: Advisor) -> None:
    answer = advisor.ask("DSとMLEどっちが稼げる？")
    assert cited(answer) == ["data_scientist#日本での推定年収dodaopenwork参照",
                             "machine_learning_engineer#日本での推定年収dodaopenwork参照"]
    text = body(answer)
    assert "1,100〜1,800+" in text and "1,300〜2,200+" in text
    assert text.index("■ **データサイエンティスト**") < text.index("■ **機械学習エンジニア**")


def test_an_outlook_comparison_takes_each_careers_outlook(advisor: Advisor) -> None:
    answer = advisor.ask("DSとMLE、将来性があるのはどっちだと思いますか？")
    assert {sid.split("#")[1] for sid in cited(answer)} == {
        "データサイエンティストの将来展望と重要性の高まり", "機械学習エンジニアの将来展望と重要性の高まり"}
    assert "需要はむしろ広がっていく" in body(answer)


def test_pm_in_a_conversation_about_ai_pm_is_answered_from_the_content(advisor: Advisor) -> None:
    answer = advisor.ask("スマホ上でAIを動かす流れはPMにどう影響する？", history=["AI PMの仕事について教えて"])
    assert cited(answer)[0].startswith("ai_product_manager#") and "エッジAI" in body(answer)
    diff = advisor.ask("ふつうのPMと何が違う？", history=["AIプロダクトマネージャーについて教えて"])
    assert "決定論的なロジック" in body(diff) and "確率論的な世界" in body(diff)


def test_a_company_named_is_answered_from_where_the_article_names_it(advisor: Advisor) -> None:
    answer = advisor.ask("Preferred NetworksのMLEってどんなことに関われるの？")
    assert cited(answer)[0] == "machine_learning_engineer#日本での就職可能な企業"
    assert "MN-Core" in body(answer)


def test_a_career_change_gets_the_whole_path_and_the_step_its_background_points_to(advisor: Advisor) -> None:
    answer = advisor.ask("Webのバックエンドエンジニアを5年やっています。Pythonは書けますが機械学習は未経験です。"
                         "MLエンジニアに転職するなら、まず何を学ぶべきでしょうか？")
    text = body(answer)
    assert "交互に鍛えていくプロセス" in text  # the path, in the article's words
    assert "『Effective Python 第2版』" in text  # the step the background names, in full
    assert "6. ポートフォリオと資格で実力を証明する" in text  # and every other step, by its aim


def test_working_together_cites_the_subsection_about_the_partner(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMは法務部門とどんな風に連携するんですか？")
    assert cited(answer) == ["ai_product_manager#法務コンプライアンス部門"]
    assert "利用規約の策定" in body(answer)
    for question, section in (("PdMは営業やカスタマーサクセスとどう付き合えばいい？",  # the heading names the partner
                               "product_manager#ビジネス営業マーケティングカスタマーサクセス部門"),
                              ("MLEはインフラの人とどう分担する？", "machine_learning_engineer#インフラsre-バックエンドエンジニア"),
                              # the partner named once among many other words, which point elsewhere
                              ("営業から「この機能作って」って毎日言われる。PMとして営業チームとはどう付き合えばいい？",
                               "product_manager#ビジネス営業マーケティングカスタマーサクセス部門")):
        assert cited(advisor.ask(question)) == [section], question


def test_a_question_that_names_no_career_says_which_one_answers(advisor: Advisor) -> None:
    answer = advisor.ask("因果推論はどうやって勉強する？")
    assert not answer.abstained and "data_scientist#4-因果推論と効果検証を学ぶ" in cited(answer)
    assert "**データサイエンティスト**の記事に" in answer.text and "『効果検証入門』" in body(answer)


def test_a_question_several_careers_answer_covers_each_briefly_and_offers_them(advisor: Advisor) -> None:
    answer = advisor.ask("面接ではどんなことを聞かれますか？")
    assert not answer.abstained and len(answer.choices) >= 2
    assert {c.section_id.split("#")[0] for c in answer.citations} == set(answer.choices)
    assert "職種によって答えが変わります" in answer.text
    assert all(len(line) < 400 for line in body(answer).splitlines())


def test_no_filler_sections_and_never_the_tag_list(advisor: Advisor) -> None:
    assert cited(advisor.ask("AI PMの年収は？")) == ["ai_product_manager#日本での推定年収dodaopenwork参照"]
    for question in ("AI PMのタグは？", "#AIPM", "MLOps 生成AI キャリア開発"):
        answer = advisor.ask(question)
        assert not any(sid.endswith("#推奨タグ") for sid in cited(answer)), question


@pytest.mark.parametrize("question", ["AI PMの年収は？", "DSとMLEどっちが稼げる？", "面接ではどんなことを聞かれますか？"])
def test_every_quoted_line_is_the_articles_own_text(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)
    sources = {s.id: s for s in advisor.knowledge.sections}
    for c in answer.citations:
        texts = [u.text for u in section_units(sources[c.section_id])]
        quoted = [line[2:].rsplit(" [", 1)[0] for line in body(answer).splitlines() if line.endswith(f"[{c.n}]")]
        assert quoted, c.section_id
        for line in quoted:
            assert any(line == t or line in t or t in line for t in texts), line


def test_each_request_is_composed_with_its_own_lexicons_not_a_cached_composers(advisor: Advisor) -> None:
    """The extractive backend keeps one composer per knowledge snapshot *and* lexicons: a request that brings
    no aspect lexicon (a third party's) does not get the pipeline's, nor the pipeline's request a bare one."""
    from bot.answer import AnswerRequest
    from bot.aspects import AspectLexicon

    question = "データサイエンティストになるには何を勉強すればいい？"
    retrieval = advisor.retriever.search(question, top_k=8)
    extractive = advisor.backend("extractive")

    def cited_with(aspects: AspectLexicon | None) -> list[str]:
        request = AnswerRequest(question=question, retrieval=retrieval, knowledge=advisor.knowledge,
                                aspects=aspects, careers=advisor.careers)
        return cited(extractive.answer(request))

    full = cited_with(advisor.retriever.aspects)
    bare = cited_with(None)
    assert "data_scientist#データサイエンティストになるための学習方法" in full and len(full) > len(bare)
    assert cited_with(advisor.retriever.aspects) == full and cited_with(None) == bare


def test_an_english_question_finds_the_lines_through_the_articles_words(advisor: Advisor) -> None:
    # "project manager" reaches 「プロジェクトマネージャー」 (synonyms.yaml): the lines that set the two apart are quoted
    answer = advisor.ask("What's the difference between a product manager and a project manager?")
    assert cited(answer) == ["product_manager#プロダクトマネージャーとは"]
    assert "「予算・納期・品質（QCD）」の範囲内で完遂させる" in body(answer)


def test_a_word_only_one_line_holds_points_to_that_line(advisor: Advisor) -> None:
    # 「部下」 is in one line of the articles: the soft skill that answers the worry, beside who fits
    answer = advisor.ask("UIデザイナー3年目です。部下を持ったことは一度もありません。こんな自分でもプロダクトマネージャーは向いている？")
    assert "product_manager#組織管理スキルソフトスキル" in cited(answer)
    assert "権限なきリーダーシップ" in body(answer)


def test_an_item_no_word_names_is_found_by_meaning_and_shown_in_full(advisor: Advisor) -> None:
    # No word of the English question is in the Japanese list; its meaning is nearest the hallucination question.
    answer = advisor.ask("I have an AI PM interview next week. If they ask how to stop an LLM from making things up, "
                         "what should I talk about?")
    text = body(answer)
    assert "Human-in-the-loop" in text and "質問1: 適合率" in text  # that item's point, beside every title
    assert "（ポイント" in text and text.count("（ポイント") == 1


@pytest.mark.parametrize("question", ["AI PMの面接でよく聞かれる質問は？", "What interview questions do product managers get asked?"])
def test_a_question_about_the_whole_list_gets_every_item_and_at_most_one_whole(advisor: Advisor, question: str) -> None:
    # Near every interview question alike once the interview part asked in general is taken away: every title,
    # and the nearest one whole as the one example (on dev, showing it whole only when it clearly stood out
    # answered 6 fewer questions).
    text = body(advisor.ask(question))
    assert all(f"質問{n}:" in text for n in range(1, 15)) and text.count("（ポイント") <= 1


def test_the_trend_the_question_means_is_shown_whole_beside_each_trends_first_line(advisor: Advisor) -> None:
    # The risk is the first trend's second sentence: its first line alone would not hold it.
    text = body(advisor.ask("With AI making coding so cheap, will product managers become less important?"))
    assert "誤ったものを素早く作ってしまうリスク" in text
    assert "非IT企業のDXと開発内製化の広がり" in text and "AIを使いこなすPdMへの進化" in text  # every other trend


def test_an_english_cue_of_plain_words_gives_way_to_the_aspect_the_question_means(advisor: Advisor) -> None:
    # "what do" is the duties cue, but the question means the interview; a cue with a word of its own ("earn") stays.
    answer = advisor.ask("Got a machine learning engineer interview on Friday. What do they usually want to know?")
    assert answer.retrieval.analysis.aspect.name == "interview"
    assert cited(answer)[0] == "machine_learning_engineer#面接でよくある質問とその対策"
    earn = advisor.ask("What does a senior AI product manager earn in Japan?")
    assert earn.retrieval.analysis.aspect.name == "salary"


def test_where_to_begin_shows_the_first_learning_step_in_full(advisor: Advisor) -> None:
    # 「何から」 asks where to start: the first step with its book and course, the later steps with their aims.
    text = body(advisor.ask("データサイエンティストを目指すなら、何から勉強すればいい？"))
    first, second = "1. 統計学と数学の基礎固め", "2. SQLとデータ前処理の習得"
    assert first in text and second in text
    assert "書籍:" in text.split(second)[0] and "書籍:" not in text.split(second)[1].split("3. ")[0]


def test_a_learning_step_no_word_names_is_found_by_meaning_and_shown_in_full(advisor: Advisor) -> None:
    # No word of the English question is in the Japanese steps; its meaning is nearest the step on preparing data.
    text = body(advisor.ask("Aspiring data scientist here: how do I get hands-on practice with real, messy data?"))
    assert "『前処理大全』" in text and text.count("書籍:") == 1  # that step's book, and only that step's
    assert "1. 統計学と数学の基礎固め — 目的:" in text  # every other step with its aim


def test_the_outlook_gives_each_trend_with_its_first_line(advisor: Advisor) -> None:
    # A trend's title alone does not say why it matters: each comes with the first sentence of its body.
    text = body(advisor.ask("データサイエンティストの将来性は？"))
    assert "生成AIによる定型分析の自動化と役割の高度化" in text and "LLMを使えば" in text
    assert "全社的なデータ活用とリスキリングの推進" in text and "文部科学省" in text


@pytest.mark.parametrize(("question", "image", "says"), [
    ("データサイエンティストって何？", "名探偵", "意思決定につなげるのがデータサイエンティストの仕事です"),
    ("What is an ML engineer, in plain words?", "職人", "「モデルの周りのすべて」を設計し、作り、運用するのが機械学習エンジニアの仕事です"),
])
def test_a_definition_is_the_image_then_the_sentence_that_says_what_the_job_is(
        advisor: Advisor, question: str, image: str, says: str) -> None:
    # Each article opens its definition with a one-line image; the sentence that defines comes a paragraph later.
    text = body(advisor.ask(question))
    assert image in text and says in text


def test_every_row_the_question_names_is_shown(advisor: Advisor) -> None:
    # 「シニア」 shares its bigram ニア with every エンジニア, so its weight is small; named whole, it still counts.
    text = body(advisor.ask("DSのジュニア・ミドル・シニアの年収レンジと特徴を表で見せて"))
    assert "450〜700" in text and "700〜1,100" in text and "1,100〜1,800+" in text


@pytest.mark.parametrize(("question", "history"), [
    ("MLEに必要なソフトスキルは？", []),
    ("what soft skills should I work on?", ["I'm an engineer wanting to become an ML engineer"]),
])
def test_the_table_whose_heading_the_question_names_answers_it(advisor: Advisor, question: str, history: list[str]) -> None:
    # 「ソフト」 is in a row of the hard skills table (「Pythonとソフトウェア設計」) and only in the soft skills one's heading
    answer = advisor.ask(question, history=history)
    assert cited(answer) == ["machine_learning_engineer#組織管理スキルソフトスキル"]
    assert "課題を分解する力" in body(answer) and "ソフトウェア設計" not in body(answer)


@pytest.mark.parametrize(("question", "says"), [
    ("will chatgpt-style llms make ai pms useless? anyone can plug ai in now", "PMの本質的な価値"),
    ("外資でプロダクトマネージャーをやると年収は高いんですか？", "年収水準は国内企業より高い傾向"),
])
def test_the_unit_nearest_in_meaning_is_found_without_the_careers_name(advisor: Advisor, question: str, says: str) -> None:
    # every unit of the career's own article shares its name: compared with the rest of the question, the trend or
    # the line it means stands out
    assert says in body(advisor.ask(question))


@pytest.mark.parametrize("question", ["AI PMは誰と協業する？", "Who do AI product managers work with?"])
def test_with_whom_a_career_works_lists_every_partner(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)
    partners = ["ai_product_manager#データサイエンティスト-mlエンジニア", "ai_product_manager#uxuiデザイナー",
                "ai_product_manager#法務コンプライアンス部門", "ai_product_manager#ビジネス営業マーケティング部門"]
    assert all(p in cited(answer) for p in partners)
    assert "解くべき数学的課題" in body(answer) and "不確実な出力" in body(answer)


def test_the_partner_named_is_the_one_answered(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMは法務とどう関わる？")
    assert cited(answer) == ["ai_product_manager#法務コンプライアンス部門"]
    assert "学習データの権利関係の確認" in body(answer)


def test_a_name_the_definition_sets_the_career_against_is_quoted(advisor: Advisor) -> None:
    text = body(advisor.ask("AIエンジニアって機械学習エンジニアと同じものですか？"))
    assert "「AIエンジニア」という呼び方で両方の役割がまとめて募集される" in text
