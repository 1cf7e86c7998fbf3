"""The extractive backend, the templates, and the backend registry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answer import BACKENDS, Answer, AnswerRequest, Citation, Link, make_backend
from bot.errors import BackendError, ConfigError, TemplateError
from bot.pipeline import Advisor
from bot.prompts import PromptLibrary
from tests.conftest import PROMPTS

SAMPLE_VARIABLES = {
    "answer.md": {
        "careers": ["AIプロダクトマネージャー"],
        "groups": [{"n": 1, "heading": "見出し", "article": "記事", "units": ["根拠の文。"]}],
        "citations": [Citation(n=1, section_id="a#b", title="記事", breadcrumb="見出し", url="https://x/a#b", score=1.0)],
        "related": [Link(title="関連", url="https://x/r")],
        "confident": True,
        "inferred": False,
        "comparison": False,
        "choices": [],
    },
    "abstain.md": {
        "suggestions": [Link(title="近い話題", url="https://x/a#b")],
        "careers": [Link(title="職種", url="https://x/a")],
        "uncovered_career": "Webエンジニア",
        "uncovered_topic": None,
        "uncovered_employer": None,
    },
    "samples.md": {"careers": ["AIプロダクトマネージャー", "データサイエンティスト"]},
}


def assert_abstains_naming(answer: Answer, name: str) -> None:
    """The answer abstains, cites nothing, and names ``name`` as the user typed it."""
    assert answer.abstained and answer.citations == (), answer.text
    assert f"「{name}」" in answer.text or f'"{name}"' in answer.text


def test_every_template_renders_in_both_languages() -> None:
    library = PromptLibrary(folder=PROMPTS)
    names = library.names()
    assert {"ja/answer.md.j2", "en/answer.md.j2", "ja/abstain.md.j2", "en/abstain.md.j2"} <= set(names)
    for path in names:
        lang, file = path.split("/", 1)
        name = file.removesuffix(".j2")
        if name not in SAMPLE_VARIABLES:
            continue  # templates of other parts (Slack, LLM) are rendered by their own tests
        assert library.render(name, language=lang, **SAMPLE_VARIABLES[name]).strip()


def test_an_undefined_variable_is_an_error() -> None:
    with pytest.raises(TemplateError, match="undefined"):
        PromptLibrary(folder=PROMPTS).render("answer.md", language="ja")


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    (tmp_path / "ja").mkdir()
    (tmp_path / "ja" / "evil.j2").write_text("{{ ''.__class__.__mro__ }}", encoding="utf-8")
    with pytest.raises(TemplateError):
        PromptLibrary(folder=tmp_path).render("evil", language="ja")


def citation_numbers(text: str) -> set[int]:
    return {int(n) for n in re.findall(r"\[(\d+)\]", text)}


def test_a_salary_answer_quotes_the_table_rows_and_cites_them(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMの年収は？")
    assert not answer.abstained and answer.confident
    first = answer.citations[0]
    assert first.section_id == "ai_product_manager#日本での推定年収dodaopenwork参照"
    assert first.url == (
        advisor.settings.article_base_url
        + "ai_product_manager#%E6%97%A5%E6%9C%AC%E3%81%A7%E3%81%AE%E6%8E%A8%E5%AE%9A%E5%B9%B4%E5%8F%8Edodaopenwork%E5%8F%82%E7%85%A7"
    )
    assert "1,400〜2,500+" in answer.text and "500〜850" in answer.text
    assert "| :--- |" not in answer.text  # rows read with their column names, not pasted Markdown
    assert citation_numbers(answer.text) == {c.n for c in answer.citations}
    assert "出典" in answer.text


def test_a_row_question_lands_on_its_row(advisor: Advisor) -> None:
    answer = advisor.ask("データサイエンティストのシニアの年収は？")
    evidence = answer.text.split("**出典**")[0]
    assert "1,100〜1,800+" in evidence and "450〜700" not in evidence


def test_answers_quote_units_not_whole_passages(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMの面接でハルシネーション対策を聞かれたら？")
    passage = answer.retrieval.hits[0].passage.text
    assert len(answer.text.split("**出典**")[0]) < len(passage)
    assert "ハルシネーション" in answer.text


def test_english_questions_get_english_wording(advisor: Advisor) -> None:
    answer = advisor.ask("How much does a product manager earn in Japan?")
    assert answer.language == "en" and "Sources" in answer.text and "出典" not in answer.text
    assert answer.citations[0].section_id.startswith("product_manager#")
    off = advisor.ask("What's the weather like in Osaka today?")
    assert off.abstained and "don't cover" in off.text and "Careers I can talk about" in off.text


@pytest.mark.parametrize("question", [
    "『INSPIRED』ってAI PMを目指す人にも役立ちますか？",  # a title the articles name
    "営業から「この機能作って」って毎日のように言われるんだけど、PMとして営業チームとはどう付き合えばいい？",  # a remark
])
def test_a_quoted_title_the_articles_name_or_a_quoted_remark_is_answered(advisor: Advisor, question: str) -> None:
    assert not advisor.ask(question).abstained


def test_words_the_articles_share_do_not_answer_a_question_whose_meaning_is_unrelated(advisor: Advisor) -> None:
    # 「ランチ」 and 「おすすめ」 are in the articles' text, but nothing there means anything like lunch
    lunch = advisor.ask("今日のランチ何食べよう？おすすめある？")
    assert lunch.abstained and lunch.citations == (), lunch.text
    assert not advisor.ask("未経験からデータサイエンティストになるには？").abstained


def test_an_abstention_says_so_and_suggests_the_nearest_topics(advisor: Advisor) -> None:
    answer = advisor.ask("東京の明日の天気は？")
    assert answer.abstained and not answer.confident and answer.citations == ()
    assert "記事にはありません" in answer.text and "近いトピック" in answer.text
    assert answer.suggestions and all(s.url.startswith(advisor.settings.article_base_url) for s in answer.suggestions)


@pytest.mark.parametrize(
    ("question", "career"),
    [
        ("Webエンジニアの年収は？", "Webエンジニア"),
        ("データアナリストになるには？", "データアナリスト"),
        ("プロジェクトマネージャーの年収は？", "プロジェクトマネージャー"),
        ("薬剤師の仕事内容は？", "薬剤師"),
        ("How much does a software engineer earn?", "software engineer"),
        # Matched on normalised text, shown as typed: case, full width and half-width kana kept.
        ("Webデザイナーの年収は？", "Webデザイナー"),
        ("SREエンジニアになるには？", "SREエンジニア"),
        ("ＳＲＥエンジニアの将来性は？", "ＳＲＥエンジニア"),
        ("ｳｪﾌﾞﾃﾞｻﾞｲﾅｰの年収は？", "ｳｪﾌﾞﾃﾞｻﾞｲﾅｰ"),
        ("What does an iOS Developer earn?", "iOS Developer"),
        # Roles the articles only work with (their collaboration subsections), asked about as careers.
        ("SREってどんな仕事で、年収はどれくらい？", "SRE"),
        ("営業の年収は？", "営業"),
        ("法務の仕事内容は？", "法務"),
        # Set against a covered career: the articles can answer only one side of the comparison.
        ("データアナリストの年収ってDSより低いんですか？", "データアナリスト"),
        ("DSよりデータアナリストのほうが未経験から入りやすい？", "データアナリスト"),
        ("SREとMLEってどっちが年収高い？", "SRE"),
        # the PdM article sets PdMs against project managers, but not their pay
        ("プロジェクトマネージャーの年収ってPdMより高い？", "プロジェクトマネージャー"),
        ("Do MLEs earn more than backend engineers?", "backend engineers"),
        ("How does a data engineer's salary compare to an MLE's?", "data engineer"),
        ("Is a designer paid less than a product manager?", "designer"),
        # the sentence that asks names only the uncovered one, a covered career comes later
        ("BIエンジニアという職種の年収はどのくらいでしょうか。データサイエンティストより低いのですか？", "BIエンジニア"),
        # a role the articles only work with, the subject of the sentence that asks (the career comes later)
        ("How much do SREs get paid in Japan? I hear they work closely with ML engineers.", "SRE"),
    ],
)
def test_a_neighbouring_career_that_has_no_article_abstains_by_name(advisor: Advisor, question: str, career: str) -> None:
    answer = advisor.ask(question)
    assert_abstains_naming(answer, career)
    assert answer.retrieval.uncovered_career == career


@pytest.mark.parametrize("question", [
    "エンジニアからPMになるには？", "インフラのスキルは必要？", "MLEはSREとどう連携する？",
    # where the asker comes from, a comparison among the covered careers, the step up the ladder
    "Webエンジニアから機械学習エンジニアに転職したいです。何から始めればいい？",
    "経験の浅いジュニア同士で比べると、PdMとMLエンジニアはどちらが年収が高いですか？",
    "If I'd rather stay hands-on than become a manager, what does the career path for an ML engineer look like?",
])
def test_a_partner_role_beside_a_career_or_as_a_skill_is_not_an_uncovered_career(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)
    assert answer.retrieval.uncovered_career is None and not answer.abstained, answer.text


@pytest.mark.parametrize("question", [
    "データサイエンティストの面接でSPIは何割取れればいい？",
    "PMになるにはPMPの資格は必要？",
    "MLエンジニアってフルリモートで働ける会社の割合どれくらい？",  # a loanword none of them uses
    "AIPM目指してるんですけど、G検定って取る意味ありますか？",  # one certification: a name glued to 検定
    "Is the PMP certification useful if I want to become a product manager?",  # an acronym, in English
    "Is 'Cracking the PM Interview' still worth buying to prep for PM interviews?",  # a title in quotes
    "PdMを目指すなら『ゼロ秒思考』は読んでおくべき？",
])
def test_a_named_thing_the_articles_never_mention_abstains_even_under_a_template_part(advisor: Advisor, question: str) -> None:
    # 「面接」 and 「なるには」 are parts the articles cover, but SPI and PMP appear in none of them.
    answer = advisor.ask(question)
    assert answer.abstained and answer.citations == (), answer.text


def test_a_count_asked_where_the_best_passage_gives_no_figure_abstains(advisor: Advisor) -> None:
    # The employers list has numbered items (「6. 製造・ヘルスケア」) but no figure; the salary table has years.
    stay = advisor.ask("On average, how many years do data scientists stay at one company before switching jobs?")
    assert stay.abstained and stay.citations == (), stay.text
    senior = advisor.ask("データサイエンティストは何年目くらいでシニアの年収になる？")
    assert not senior.abstained and "7年以上" in senior.text, senior.text


@pytest.mark.parametrize("question", [
    "When is the next MLOps conference in Japan? I want to go as an ML engineer.",
    "機械学習エンジニアの勉強会って次はいつ開催される？",
    "G検定って何点取れば受かるの？AI PMを目指してます",  # a score
    "MLE向けのそのオンライン講座、修了まで何週間くらい？",  # a length of time
])
def test_a_date_score_or_length_asked_where_the_best_passage_gives_no_figure_abstains(advisor: Advisor, question: str) -> None:
    # The articles give no dates of events, pass marks or course lengths; the sections these words meet hold no figure.
    answer = advisor.ask(question)
    assert answer.abstained and answer.citations == (), answer.text


def test_when_in_a_career_is_answered_by_the_ladder(advisor: Advisor) -> None:
    # 「いつ頃」 asks when in a career, not for a date: the ladder (no figures) answers it.
    answer = advisor.ask("PdMっていつ頃からリーダーを任される？")
    assert not answer.abstained and "シニアPdM" in answer.text, answer.text


def test_a_name_the_articles_write_with_a_mark_inside_is_known_without_it(advisor: Advisor) -> None:
    # The articles write 「A/Bテスト」; a question writes 「ABテスト」. Not an unknown name.
    answer = advisor.ask("データサイエンティストって、ABテストできない施策の効果はどうやって測るんですか？")
    assert not answer.abstained and answer.citations, answer.text


@pytest.mark.parametrize(("question", "section"), [
    ("MLEにE資格は必要？", "machine_learning_engineer#6-ポートフォリオと資格で実力を証明する"),  # named by the article
    ("データサイエンティストの勉強で、無料のオンライン講座はありますか？", None),  # 「オンライン」 is a word, not a name
    ("Do ML engineers really need SQL and Python?", None),  # acronyms the articles use
])
def test_a_named_thing_the_articles_mention_or_a_plain_word_before_a_cue_is_answered(
        advisor: Advisor, question: str, section: str | None) -> None:
    answer = advisor.ask(question)
    assert not answer.abstained and answer.citations, answer.text
    assert section is None or section in {c.section_id for c in answer.citations}, answer.text


def test_an_english_word_in_small_letters_is_how_a_question_is_put_not_a_name(advisor: Advisor) -> None:
    plain = advisor.ask("AI PMになるのにtech skillってどこまで要る？")
    assert not plain.abstained and "ai_product_manager#技術スキルハードスキル" in {c.section_id for c in plain.citations}
    named = advisor.ask("AI PMになるのにTOEICのスコアはどこまで要る？")  # a name: capitals
    assert named.abstained, named.text


@pytest.mark.parametrize("question", ["ミドルクラスのAI PMはいくらもらえる？", "MLEはSREやバックエンドエンジニアとどう連携する？"])
def test_a_loanword_made_of_the_articles_words_or_in_their_headings_is_known(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)  # 「ミドル」+「クラス」; 「バックエンドエンジニア」 is a heading
    assert not answer.abstained and answer.citations, answer.text


@pytest.mark.parametrize(("question", "subject"), [
    ("MLエンジニアって副業OKの会社多い？", "副業"),  # 副業 is a word the articles use, and 会社 a part they cover
    ("残業が少ないのはどんな企業？", "残業"),
    ("データサイエンティストのボーナスは年収に対してどのくらい？", "ボーナス"),
    ("Which companies let ML engineers work remote?", "work remote"),
    ("東京と福岡でPdMの年収ってどのくらい差がありますか？", "福岡"),  # a place the articles never name
    ("What's a data scientist's salary in Singapore?", "Singapore"),
    ("How much should I charge per hour as a freelance data scientist?", "per hour"),  # money beyond the salary
    ("年収800万のMLEだと手取りはいくら？", "手取り"),
])
def test_a_subject_no_part_of_the_articles_covers_abstains_by_name(advisor: Advisor, question: str, subject: str) -> None:
    answer = advisor.ask(question)
    assert_abstains_naming(answer, subject)
    assert answer.retrieval.analysis.uncovered_topic == subject


@pytest.mark.parametrize(("question", "employer"), [
    ("メルカリのPdMって年収いくらもらえるの？", "メルカリ"),
    ("Googleの機械学習エンジニアの選考って面接何回あるの？", "Google"),  # shown as typed
    ("How much does a data scientist make at LINEヤフー?", "LINEヤフー"),
    ("What's the salary band for a senior PdM at Mercari?", "Mercari"),  # as English writes メルカリ (synonyms)
    ("楽天のデータサイエンティストって将来性ある？", "楽天"),  # the outlook is the career's, not one company's
    ("Do you think Rakuten will cut its data science team next year?", "Rakuten"),  # the outlook by meaning
])
def test_one_employers_salary_or_interview_abstains_by_name(advisor: Advisor, question: str, employer: str) -> None:
    # The salary tables and interview questions are for the career as a whole; the employers part names the company.
    answer = advisor.ask(question)
    assert_abstains_naming(answer, employer)
    assert answer.retrieval.analysis.uncovered_employer == employer


@pytest.mark.parametrize("question", [
    "サイバーエージェントだとデータサイエンティストはどんなことやってるの？",  # its line among the employers says
    "外資だとPdMの年収は高い？",  # a kind of employer, not one
    "PdMになるならメルカリみたいな会社が候補？",  # the employers part itself
    "Does Mercari hire product managers?",
])
def test_an_employer_named_about_what_the_articles_say_of_it_is_answered(advisor: Advisor, question: str) -> None:
    answer = advisor.ask(question)
    assert not answer.abstained and answer.retrieval.analysis.uncovered_employer is None, answer.text


def test_an_english_question_about_a_covered_career_is_answered_however_it_is_put(advisor: Advisor) -> None:
    # no cue word of any part ("on a PdM's plate"): answered from the career's article, not abstained
    for question, slug in (("What's the top of the ladder for an AI PM, and then what?", "ai_product_manager"),
                           ("Is the PdM job going to disappear now that AI writes code?", "product_manager")):
        answer = advisor.ask(question)
        assert not answer.abstained and {c.section_id.split("#")[0] for c in answer.citations} == {slug}, question
    answer = advisor.ask("What's on a PdM's plate in a normal week? Do they write the specs themselves?")
    assert "product_manager#主な業務" in {c.section_id for c in answer.citations}
    for question in ("What's the average age of machine learning engineers in Japan?",
                     "Can I get a work visa in Japan as a foreign ML engineer?"):
        assert advisor.ask(question).abstained, question  # what the articles leave out, by name


def test_a_subject_the_articles_leave_out_counts_only_in_the_sentence_that_asks(advisor: Advisor) -> None:
    # Background that mentions working conditions does not make the question uncovered.
    answer = advisor.ask("今は残業の多い会社で営業をしています。未経験からデータサイエンティストになるには何から始めればいい？")
    assert not answer.abstained and answer.retrieval.analysis.uncovered_topic is None, answer.text
    assert answer.citations and all(c.section_id.startswith("data_scientist#") for c in answer.citations)


def test_a_name_in_the_background_of_a_long_message_is_not_what_it_asks(advisor: Advisor) -> None:
    asks = advisor.ask("データサイエンティストになるにはSAPの知識は必要？")
    background = advisor.ask("商社でSAPの導入担当を5年やってました。データサイエンティストになるには何から勉強すればいい？")
    assert asks.abstained
    analysis = background.retrieval.analysis
    assert "sap" in analysis.topic and "sap" not in analysis.asked_topic
    assert not background.abstained


def test_unknown_words_in_the_background_of_a_long_message_do_not_make_it_uncovered(advisor: Advisor) -> None:
    background = advisor.ask("物流倉庫で在庫管理を8年やってきました。データサイエンティストに近づくために今できることは？")
    asked = advisor.ask("データサイエンティストは在庫管理をやる？")  # the same words, now what is asked
    assert not background.abstained and background.retrieval.evidence.damped == 0
    assert asked.abstained and asked.retrieval.evidence.damped == 1


def test_how_words_in_latin_letters_are_not_a_topic(advisor: Advisor) -> None:
    answer = advisor.ask("未経験でもOK？MLエンジニアになるには何から始める？")
    assert not answer.abstained and answer.citations
    assert all(c.section_id.startswith("machine_learning_engineer#") for c in answer.citations)


def test_covered_careers_inside_longer_titles_are_still_answered(advisor: Advisor) -> None:
    for question in ("シニアデータサイエンティストの仕事は？", "AIエンジニアの年収は？", "PdMとプロジェクトマネージャーの違いは？"):
        answer = advisor.ask(question)
        assert not answer.abstained and answer.retrieval.uncovered_career is None, question


def test_related_career_links_all_resolve(advisor: Advisor) -> None:
    answer = advisor.ask("機械学習エンジニアのキャリアパスは？")
    slugs = {a.slug for a in advisor.knowledge.articles}
    assert answer.related
    for link in answer.related:
        assert link.url.removeprefix(advisor.settings.article_base_url) in slugs


def test_the_json_shape_of_an_answer(advisor: Advisor) -> None:
    data = advisor.ask("AI PMのキャリアパスは？").to_json()
    assert {"answer", "confident", "citations", "passages", "timings_ms"} <= set(data)
    assert {"section_id", "title", "url", "score"} <= set(data["citations"][0])
    assert {"section_id", "title", "text", "score"} <= set(data["passages"][0])
    assert data["timings_ms"]["total"] > 0


def test_a_failing_backend_falls_back_to_extractive(advisor: Advisor) -> None:
    class Broken:
        name = "broken"

        def answer(self, request: AnswerRequest) -> Answer:
            raise BackendError("the model is down")

    BACKENDS.register("broken", lambda settings, prompts: Broken())
    try:
        answer = advisor.ask("AI PMの年収は？", backend="broken")
    finally:
        BACKENDS.unregister("broken")
        advisor._backends.pop("broken", None)
    assert answer.backend == "extractive" and answer.citations


def test_an_unknown_backend_names_the_setting_and_the_known_ones(advisor: Advisor) -> None:
    with pytest.raises(ConfigError) as info:
        make_backend("nope", advisor.settings, advisor.prompts)
    assert "CAREERBOT_BACKEND" in str(info.value) and "extractive" in str(info.value)


def test_over_long_questions_are_cut(advisor: Advisor) -> None:
    answer = advisor.ask("AI PMの年収は？" + "あ" * 5000)
    assert len(answer.question) == advisor.settings.max_question_chars


@pytest.mark.parametrize("question", ["pdm vs project manager — whats the real difference?",
                                      "PdMとプロジェクトマネージャーって何が違うの？"])
def test_a_role_the_careers_definition_sets_it_against_is_compared_from_that_definition(
        advisor: Advisor, question: str) -> None:
    # No article covers project managers, but the PdM article's definition says how the two differ.
    answer = advisor.ask(question)
    assert not answer.abstained and "予算・納期・品質（QCD）" in answer.body
