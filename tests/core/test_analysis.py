"""The question analysis and the aspect lexicon, on the real knowledge base (no index needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis import Analyzer, has_topic, unknown_words
from bot.aspects import AspectLexicon, lead_sections
from bot.careers import CareerLexicon
from bot.errors import KnowledgeError
from bot.knowledge import load_knowledge
from bot.synonyms import Synonyms
from tests.conftest import KNOWLEDGE

KB = load_knowledge(KNOWLEDGE)
ASPECTS = AspectLexicon.load(KNOWLEDGE / "aspects.yaml")
ANALYZER = Analyzer(
    careers=CareerLexicon.from_articles(KB.articles),
    aspects=ASPECTS,
    synonyms=Synonyms.load(KNOWLEDGE / "synonyms.yaml"),
    idf=lambda term: 1.0,
    unnamed_places=ASPECTS.unnamed_places(KB.sections),
)


def analyze(question: str, *turns: str):
    return ANALYZER.analyze(question, history=turns)


def test_every_section_of_every_article_has_a_part_of_the_template() -> None:
    for article in KB.articles:
        roles = {ASPECTS.role_of(s) for s in article.sections}
        assert None not in roles, article.slug
        assert roles >= {"salary", "definition", "duties", "skills", "tools", "collaboration", "career_path",
                         "outlook", "learning", "companies", "interview", "summary", "tags"}, article.slug
        tags = [s for s in article.sections if not ASPECTS.searchable(s)]
        assert [ASPECTS.role_of(s) for s in tags] == ["tags"]


def test_lead_ins_are_the_short_parents_of_subsections() -> None:
    leads = lead_sections(KB.sections)
    assert "ai_product_manager#必要なスキルとツール" in leads  # one sentence, then the skill tables
    assert "ai_product_manager#ai-product-managerになるための学習方法" in leads
    assert "data_scientist#データサイエンティストになるための学習方法" not in leads  # a real paragraph of its own
    assert "ai_product_manager#主な業務" not in leads  # no subsections


@pytest.mark.parametrize(
    ("question", "aspect"),
    [
        ("AI PMの年収は？", "salary"),
        ("DSって稼げる？", "salary"),
        ("AI PMに向いてるのってどんな人？", "suited"),
        ("DSの1日ってどんな感じ？", "duties"),
        ("AI PMってそもそも何をする人？", "definition"),  # what the person is, not their day
        ("what's a typical day like for a data scientist?", "duties"),  # "what's a" of a day, not of the career
        ("What's a data scientist, really?", "definition"),
        ("AI PMになるにはどんな本で勉強すればいい？", "books"),  # books, not learning: the more specific part
        ("MLEにおすすめの資格は？", "certification"),
        ("MLEの面接でよく聞かれることは？", "interview"),
        ("PdMの次のキャリアは？シニアの次は？", "career_path"),
        ("What skills does an ML engineer need?", "skills"),
        ("機械学習エンジニアについて、要点だけまとめてもらえますか？", "summary"),  # the article's まとめ
        ("Can you sum up what a data scientist is in a nutshell?", "summary"),
        ("In a nutshell, what is an AI product manager?", "definition"),  # the one line the definition gives
        ("Could you sum it all up for a PdM?", "summary"),  # the phrasal verb split by its object
        ("What's the gist of the ML engineer job?", "summary"),
        ("DSの面接の質問をまとめて", "interview"),  # a more specific part wins
        ("How do the career paths of ML engineers and data scientists differ?", "career_path"),  # plural
        ("AI PMはデモを作るとき何を使ってる？", "tools"),
        ("What would an AI PM use to spin up a quick demo?", "tools"),  # "what … use", as 何を使う
        ("How much does a data scientist make in Japan?", "salary"),
        ("With AI making coding cheap, will product managers become less important?", "outlook"),  # not "become"
        ("What do data scientists use for version control?", "tools"),
        ("How do data scientists and ML engineers work together?", "collaboration"),
        ("Can a senior ML engineer make 15 million yen a year?", "salary"),
        ("As a data scientist, what other roles could I move into later on?", "career_path"),
        ("Is product management still a good career with AI around?", "outlook"),
        ("What does a typical day look like for an AI PM?", "duties"),
        # Background first, the question last: the last sentence decides.
        ("30代で経理をしています。社内のAI導入に関わりました。AI PMって一言でいうとどういう仕事ですか？", "definition"),
        ("今の会社でExcel集計をしています。DSに転職するために今できることは？", "start"),
        # A part named in the background and again where the question asks: the asking sentence decides.
        ("DSの仕事内容について質問です。モデルの学習のほかに、毎日どんな作業がありますか？", "duties"),
    ],
)
def test_the_aspect_is_what_the_question_asks(question: str, aspect: str) -> None:
    assert analyze(question).aspect.name == aspect


def test_how_much_of_a_thing_is_no_salary_question() -> None:
    assert analyze("How much stats and math do I really need as a data scientist?").aspect is None  # by meaning later
    assert analyze("How much can a senior ML engineer earn?").aspect.name == "salary"


def test_a_one_kanji_cue_counts_only_as_a_word_of_its_own() -> None:
    assert analyze("DSにおすすめの本は？").aspect.name == "books"
    assert analyze("日本のDSの本番運用は？").aspect is None or analyze("日本のDSの本番運用は？").aspect.name != "books"


def test_definitions_and_differences_need_a_career() -> None:
    assert analyze("ノーススターメトリックって何？").aspect is None  # a concept, wherever the articles explain it
    assert analyze("適合率と再現率の違いは？").aspect is None
    assert analyze("AI PMって何？").aspect.name == "definition"


def test_careers_in_order_and_how_they_were_found() -> None:
    a = analyze("DSとMLEどっちが稼げる？")
    assert a.slugs == ("data_scientist", "machine_learning_engineer") and a.comparison
    assert [c.via for c in a.careers] == ["named", "named"]
    follow = analyze("年収はどれくらい？", "データサイエンティストについて教えて")
    assert follow.slugs == ("data_scientist",) and follow.careers[0].via == "context"


def test_a_field_names_its_career() -> None:
    a = analyze("I'm torn between data science and product management.")
    assert a.slugs == ("data_scientist", "product_manager")
    assert analyze("And ML engineering?", "Is data science still a good career?").slugs == ("machine_learning_engineer",)
    assert analyze("プロダクトマネジメントの仕事って何？").slugs == ("product_manager",)


@pytest.mark.parametrize(("question", "slug", "aspect"), [
    ("データサイエンテイストって結局何する人なの？", "data_scientist", "definition"),  # a small ィ typed large
    ("MLエンジニヤの年収ってどのくらい？", "machine_learning_engineer", "salary"),  # ア typed as ヤ
    ("プロダクトマネジャーの年収は？", "product_manager", "salary"),  # a house style without the long vowel
    ("AIプロダクトマネージャの将来性は？", "ai_product_manager", "outlook"),
    ("AIPMってふつうのPMと何がちがうの？", "ai_product_manager", "difference"),  # a cue in kana
    ("こんな性格でもDSにむいてる？", "data_scientist", "suited"),
])
def test_other_spellings_of_names_and_cues_are_read_as_the_same(question: str, slug: str, aspect: str) -> None:
    a = analyze(question)
    assert a.slugs[0] == slug and a.aspect.name == aspect


@pytest.mark.parametrize(("question", "slug", "background"), [
    ("PMからAI PMになるには何を勉強すればいい？", "ai_product_manager", "product_manager"),
    ("今はWebサービスのPMをやっています。AI PMにキャリアチェンジするなら何から始めればいい？", "ai_product_manager",
     "product_manager"),
    ("データサイエンティストとして働いています。MLエンジニアに転向するには？", "machine_learning_engineer", "data_scientist"),
    ("How do I move from data science into ML engineering?", "machine_learning_engineer", "data_scientist"),
])
def test_the_career_the_asker_comes_from_is_not_the_one_asked_about(question: str, slug: str, background: str) -> None:
    a = analyze(question)
    assert a.slugs == (slug,) and a.background == background and not a.comparison


def test_a_career_named_as_the_goal_or_as_the_subject_is_no_background() -> None:
    goal = analyze("AI PMとして働くにはPMの経験が必要？")  # where they are going, not where they come from
    assert goal.background is None and goal.slugs[0] == "ai_product_manager"
    shared = analyze("PMとして機械学習エンジニアやAI PMとはどう役割分担する？")  # collaboration: PM is the subject
    assert shared.background is None and shared.slugs[0] == "product_manager"
    assert analyze("PMとAI PM、未経験から目指しやすいのは？").comparison  # two careers compared, neither one's own


@pytest.mark.parametrize("question", ["データサイエンティストとは何が違うの？", "DSとの違いは？", "How is that different from a data scientist?"])
def test_a_difference_from_one_career_after_a_conversation_about_another_compares_the_two(question: str) -> None:
    a = analyze(question, "機械学習エンジニアについて教えて")
    assert a.aspect.name == "difference" and a.comparison, (a.aspect, a.comparison)
    assert a.slugs == ("machine_learning_engineer", "data_scientist")
    assert analyze("データサイエンティストとは何？", "機械学習エンジニアについて教えて").aspect.name == "definition"


def test_pm_after_a_conversation_about_ai_pm_means_ai_pm_first() -> None:
    a = analyze("PMの勉強にはどんなオンライン講座がありますか？", "AI PMを目指しています")
    assert a.slugs == ("ai_product_manager", "product_manager")
    assert [c.via for c in a.careers] == ["conversation", "named"] and not a.comparison
    diff = analyze("ふつうのPMと何が違う？", "AIプロダクトマネージャーについて教えて")
    assert diff.comparison and diff.aspect.name == "difference" and diff.slugs[0] == "ai_product_manager"
    assert analyze("PMの年収は？").slugs == ("product_manager",)  # no conversation: PM is PM


@pytest.mark.parametrize(
    ("question", "careers"),
    [
        ("AIのPMとして働ける会社ってどこ？", ["ai_product_manager"]),
        ("AIプロダクトのPMとUIデザイナーは何を一緒に決める？", ["ai_product_manager"]),
        ("AI系PMの年収は？", ["ai_product_manager"]),
        ("AIとPMの違いは？", ["product_manager"]),  # two things, not one qualified name
        ("AIに仕事を奪われるPMはいる？", ["product_manager"]),  # a clause between, not a noun phrase
        ("PMとしてAIの機能を担当します", ["product_manager"]),
        ("AI PMとPMの違いは？", ["ai_product_manager", "product_manager"]),
    ],
)
def test_a_qualifier_before_a_careers_name_names_the_qualified_career(question: str, careers: list[str]) -> None:
    assert list(analyze(question).slugs) == careers


def test_a_second_part_asked_in_the_same_sentence_is_kept_beside_the_first() -> None:
    both = analyze("DSの年収と将来性を教えて")
    assert (both.aspect.name, both.also.name) == ("salary", "outlook")
    assert analyze("AI PMになるにはどんな本で勉強すればいい？").also is None  # 勉強 and なるには: the same part
    assert analyze("AI PMとPMの年収の違いは？").also is None  # a difference says how salary is asked
    assert analyze("MLEについて調べています。年収は？").also is None


def test_collaboration_partners_and_subjects() -> None:
    a = analyze("AI PMはデータサイエンティストやMLエンジニアとどう関わる？")
    assert a.slugs == ("ai_product_manager",) and set(a.partners) == {"データサイエンティスト", "mlエンジニア"}
    assert not a.comparison
    partner_only = analyze("じゃあデータサイエンティストとはどう関わる？", "PdMはデザイナーとどう連携しますか？")
    assert partner_only.slugs == ("product_manager",) and partner_only.partners == ("データサイエンティスト",)
    # The conversation's subject, not the partner of its last turn, carries on.
    later = analyze("じゃあ法務とはどう関わるの？", "AI PMってどんな職種と一緒に働くの？", "データサイエンティストとはどう連携する？")
    assert later.slugs == ("ai_product_manager",)
    mutual = analyze("プロダクトマネージャーとデータサイエンティストはどう協力する？")
    assert mutual.slugs == ("product_manager", "data_scientist") and mutual.partners == ()


def test_topicless_follow_ups_carry_the_conversation_topic() -> None:
    assert not has_topic("シニアだと?") and not has_topic("what about s?")
    assert has_topic("面接は?") and has_topic("how much do they earn?")
    a = analyze("シニアだと？", "データサイエンティストの年収は？")
    assert a.aspect.name == "salary" and a.slugs == ("data_scientist",) and "シニ" in a.terms
    en = analyze("What about AI PMs?", "What is the future outlook for product managers?")
    assert en.aspect.name == "outlook" and en.slugs[0] == "ai_product_manager"
    switch = analyze("普通のPdMだとどう？", "AI PMの年収を教えて")  # 普通 says how, not what: still topicless
    assert switch.aspect.name == "salary" and switch.slugs == ("product_manager",)


def test_a_follow_up_with_a_topic_but_no_cue_asks_about_the_part_the_conversation_did() -> None:
    a = analyze("What about for version control and managing data transformations?", "What tools does a data scientist use?")
    assert a.aspect.name == "tools" and a.aspect_cue is None and a.aspect_turn == "What tools does a data scientist use?"
    assert a.slugs == ("data_scientist",)
    own = analyze("年収は？", "PdMの面接対策をしたいです")  # its own cue wins
    assert own.aspect.name == "salary" and own.aspect_turn is None
    assert analyze("KPIの質問ってどう答えればいい？", "PdMについて知りたい").aspect_turn is None  # no part asked before


def test_a_subject_the_articles_leave_out_is_found_in_the_sentence_that_asks() -> None:
    assert analyze("MLエンジニアって副業OKの会社多い？").uncovered_topic == "副業"
    assert analyze("Can product managers work from home?").uncovered_topic == "work from home"
    assert analyze("MLEだと？", "データサイエンティストの残業は？").uncovered_topic == "残業"  # carried
    assert analyze("残業続きで転職を考えています。AI PMになるには？").uncovered_topic is None  # background
    assert analyze("What are the remote sensing skills a DS needs?").uncovered_topic is None  # not the word remote
    assert analyze("AI PMの年収は？").uncovered_topic is None
    # the paperwork of a job hunt, also where a cue is part of the word (年収 in 年収交渉)
    assert analyze("AI PMの内定が出たら、年収交渉はどう進めればいいですか？").uncovered_topic == "年収交渉"
    assert analyze("How should I format my resume for product manager jobs?").uncovered_topic == "resume"
    assert analyze("I'm 45. Is there an age limit for switching into ML engineering?").uncovered_topic == "age limit"
    assert analyze("AI PMに必要な交渉力とは？").uncovered_topic is None  # a skill the article names
    # money for learning, figures about the people, the terms of a contract
    assert analyze("プロダクトマネジメントの講座に教育訓練給付金は使えますか？").uncovered_topic == "給付金"
    assert analyze("Are there many women among product managers in Japan?").uncovered_topic == "women"
    assert analyze("Can I legally join a rival as an MLE under a non-compete?").uncovered_topic == "legally"
    assert analyze("外資系のPdMは日本企業に比べて解雇されやすいと聞きますが、実際どう？").uncovered_topic == "解雇"
    # who wrote a book, rates and head counts the articles never give, a training budget
    assert analyze("『仕事ではじめる機械学習』の著者って誰？").uncovered_topic == "著者"
    assert analyze("E資格の合格率ってどのくらい？").uncovered_topic == "合格率"
    assert analyze("What percentage of product managers in Japan are women?").uncovered_topic == "percentage"  # the first
    assert analyze("Preferred Networksは機械学習エンジニアを年間何人くらい採用していますか？").uncovered_topic == "何人"
    assert analyze("社内でAI PMを育成したいのですが、研修費はどのくらい見込めば？").uncovered_topic == "研修費"
    assert analyze("How many years until a data scientist is senior?").uncovered_topic is None  # the salary table says
    # a second question asks too, though the cue is in another sentence
    assert analyze("E資格の受験料はいくらですか？機械学習エンジニアを目指していて迷っています").uncovered_topic == "受験料"
    assert analyze("PdMって有給とりやすい？繁忙期とかある？").uncovered_topic == "有給"
    assert analyze("残業の多い営業職から抜け出したい。AI PMになるには？").uncovered_topic is None  # no question
    # no cue: the sentence that asks is the last question, not the background after it
    assert analyze("Is there an age cutoff for getting into data science? I'm 45 and have never written code.") \
        .uncovered_topic == "age cutoff"


def test_prices_family_and_requests_for_code_are_beyond_and_two_part_words_match_in_one_sentence() -> None:
    # "how much…cost": both in the sentence that asks, the text shown is the second part
    assert analyze("How much does Udacity's Product Manager Nanodegree cost?").uncovered_topic == "cost"
    assert analyze("How much do AI PMs earn? I know the cost of living is high.").uncovered_topic is None
    assert analyze("How much does an AI PM earn in their first year?").uncovered_topic is None
    assert ASPECTS.beyond("How much do AI PMs earn. The cost is high") is None  # not across a full stop
    assert analyze("How many product managers does LINE Yahoo currently employ?").uncovered_topic == "employ"
    assert analyze("E資格の受験料ってどのくらい？").uncovered_topic == "受験料"
    assert analyze("データサイエンティストになりたいけど、子育てと両立できますか？").uncovered_topic == "子育て"
    assert analyze("AI PMの仕事で大丈夫か不安です。向いてますか？").uncovered_topic is None  # 夫 only as a word
    assert analyze("PyTorchでLoRAのファインチューニングをするコードを書いてくれない？").uncovered_topic == "書いてくれ"
    assert analyze("もしその面接に落ちたら、何ヶ月後に再応募できますか？").uncovered_topic == "再応募"


def test_subjects_of_working_life_and_of_a_job_hunt_the_articles_never_treat_are_beyond() -> None:
    assert analyze("Do AI PMs at big companies get paternity leave?").uncovered_topic == "paternity leave"
    assert analyze("Is being on call every weekend normal for ML engineers?").uncovered_topic == "on call"
    assert analyze("MLEとして働きながらメンターを探すならどこ？").uncovered_topic == "メンター"
    assert analyze("How much is a Tableau license for a data scientist?").uncovered_topic == "license"
    assert analyze("データサイエンティストに修士は要りますか？").uncovered_topic == "修士"
    assert analyze("PdMへの転職で、転職エージェントは使うべき？").uncovered_topic == "転職エージェント"
    assert analyze("AI PMの面接にはスーツで行くべき？").uncovered_topic == "スーツ"
    assert analyze("Please write a cover letter for my data scientist application.").uncovered_topic == "please write"
    assert analyze("サイバーエージェントのデータサイエンティストは何をしてる？").uncovered_topic is None  # an employer
    # health, the terms of employment and its paperwork, what people say of a company
    assert analyze("AI PMって燃え尽きる人多い？メンタル大丈夫？").uncovered_topic == "メンタル"
    assert analyze("Do ML engineers in Japan get a company pension?").uncovered_topic == "pension"
    assert analyze("データサイエンティストの試用期間ってどれくらい？").uncovered_topic == "試用期間"
    assert analyze("What's the reputation of LINE Yahoo among product managers?").uncovered_topic == "reputation"
    # internships, editions, residency and moving abroad, business travel
    assert analyze("データサイエンティストのインターンって学部生でも参加できる？").uncovered_topic == "インターン"
    assert analyze("How long until a foreign ML engineer can get permanent residency in Japan?").uncovered_topic == "permanent residency"
    assert analyze("AI PMって海外出張は多いですか？").uncovered_topic == "出張"
    # the paperwork and etiquette of a job hunt: what to ask back, a self-introduction, an offer's terms
    assert analyze("PdMの面接の逆質問って何を聞けばいい？").uncovered_topic == "逆質問"
    assert analyze("Does a data scientist offer in Japan usually include a signing bonus?").uncovered_topic == "signing bonus"
    # academic degrees, asked about; a degree in the background is no question about one
    assert analyze("AI PMを目指すなら社会人大学院に行くべき？").uncovered_topic == "大学院"
    assert analyze("Do I need a PhD to get hired as an ML engineer?").uncovered_topic == "phd"
    assert analyze("I did a PhD in physics. Which books should I read to become a data scientist?").uncovered_topic is None


def test_a_person_asked_about_by_name_is_beyond_the_articles_but_not_their_book() -> None:
    assert analyze("及川卓也さんって今どこの会社にいるんですか？PdMとして尊敬してます").uncovered_topic == "及川卓也さん"
    assert analyze("AI PMの山田氏の経歴を教えてください").uncovered_topic == "山田氏"
    assert analyze("及川卓也さんの本はPdMにおすすめ？").uncovered_topic is None  # a book, which the articles list
    assert analyze("お客さんと話すのが好きです。PdMに向いてる？").uncovered_topic is None  # no one in particular
    assert analyze("Andrew Ng氏の講座はAI PMにおすすめ？").uncovered_topic is None
    # a book read before the name is background: the person is what is asked
    assert analyze("DSの本を読んでいて思ったんですが、山田太郎さんってどんな経歴の方ですか？").uncovered_topic == "山田太郎さん"


def test_a_place_the_articles_never_name_is_beyond_them_and_shown_as_typed() -> None:
    assert analyze("東京と福岡でPdMの年収ってどのくらい差がありますか？").uncovered_topic == "福岡"
    assert analyze("Is it better to work as an ML engineer in Singapore or in Japan?").uncovered_topic == "Singapore"
    assert analyze("東京で働くデータサイエンティストの年収は？").uncovered_topic is None  # the articles name Tokyo
    assert analyze("福岡在住です。未経験からPdMになるには？").uncovered_topic is None  # background, not what is asked
    assert ASPECTS.places_in("PdMに必要なマインドセットは？") == []  # 「インド」 only as a word of its own
    assert ASPECTS.places_in("インドとシンガポール、どっち？") == ["インド", "シンガポール"]
    assert "東京" not in ASPECTS.unnamed_places(KB.sections) and "福岡" in ASPECTS.unnamed_places(KB.sections)
    # echoed from where it is a word of its own, as typed (half-width here), not from inside 「マインド」
    assert analyze("マインドも大事だけど、ｲﾝﾄﾞでPdMとして働ける？").uncovered_topic == "ｲﾝﾄﾞ"


def test_the_topic_leaves_out_careers_cues_and_their_synonyms() -> None:
    a = analyze("日本で機械学習エンジニアとして働ける会社は？")
    assert a.aspect.name == "companies"
    assert "企業" not in a.terms and "会社" not in a.terms  # 会社 is what is asked; 企業 is its synonym
    assert all(len(t) > 1 for t in a.terms)  # no lone kana or kanji left from a longer word


def test_unknown_words_are_words_not_seams_or_fillers() -> None:
    vocabulary = {"法務", "部門", "時間", "ミド", "ドル", "クラ", "ラス", "技術", "toeic", "最終", "到達"}

    def known(term: str) -> bool:
        return term in vocabulary

    assert unknown_words("残業多い?月何時間くらい?", known=known) == ["残業多", "月何時"]
    assert unknown_words("法務部門との調整は", known=known) == ["調整"]  # 「務部」 is a seam of 法務|部門
    assert unknown_words("何を調整する", known=known) == []  # a verbal noun used as a verb is what is done
    assert unknown_words("ミドルクラスだと", known=known) == []
    assert unknown_words("最終到達点ってどこ?", known=known) == []  # 到達 with the suffix 点, after a seam
    assert unknown_words("技術盗用", known=known) == ["術盗用"]  # two unknown bigrams: a word of its own
    assert unknown_words("ダメ?", known=known, fillers=frozenset({"ダメ"})) == []
    assert unknown_words("pmp を取るべき", known=known) == ["pmp"]


def test_a_malformed_aspects_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "aspects.yaml"
    for text, message in [
        ("roles: [1, 2", "invalid aspects file at line"),
        ("[]", "a mapping"),
        ("roles:\n  - {name: salary}\n", "roles: item 1"),
        ("roles: []\naspects:\n  - {name: x, cues: [a], answer: poem}\n", "answer should be one of"),
        ("roles: []\naspects:\n  - {name: x, cues: [a], roles: [nowhere]}\n", "roles should be a list of the roles"),
        ("fillers: {a: 1}\n", "fillers: should be a list"),
        ("beyond: 残業\n", "beyond: should be a list"),
        ("places: 福岡\n", "places: should be a list"),
        ("roles: [{name: x, headings: [x]}]\naspects:\n  - {name: x, cues: [a], examples: 年収は？}\n",
         "x: examples should be a list of questions"),
    ]:
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(KnowledgeError, match=message) as info:
            AspectLexicon.load(bad)
        assert str(bad) in str(info.value)
    assert AspectLexicon.load(tmp_path / "missing.yaml").aspects == ()


@pytest.mark.parametrize(("question", "title"), [
    ("Webエンジニアの年収は？", "Webエンジニア"),
    ("What does a UX designer earn?", "UX designer"),
    ("I work as a QA engineer. What next?", "QA engineer"),  # from the title's first word, not "as a"
    ("Is a designer paid well?", "designer"),  # a bare ending no covered career has
    ("シニア同士で比べると年収は？", None),  # 同士 and 全員 end like 弁護士 and 会社員 but are no jobs
    ("チーム全員でやる仕事は？", None),
    ("Should I become a manager?", None),  # "manager" alone may be the product manager
])
def test_a_job_title_no_article_covers(question: str, title: str | None) -> None:
    assert ANALYZER.careers.uncovered(question) == title
