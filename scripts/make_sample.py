"""Generate the small multilingual NER sample corpus bundled with nertool.

The corpus exists so that ``nertool demo`` and the tests can run the whole pipeline offline, in
seconds, on data that looks like PAN-X: IOB2 tags over the types PER, ORG and LOC, punctuation
as separate tokens, one ``token<TAB>tag`` per line and a blank line between sentences.

Sentences come from hand-written templates in German, French, Italian and English. The
context words differ per language, while most person names and many organisations and cities
are shared: a model trained on German can then transfer a little to the other languages, which
is what ``nertool transfer`` measures. Everything is drawn from one seeded ``random.Random``,
so re-running this script reproduces the committed files byte for byte.

Usage: ``python scripts/make_sample.py [--out DIR] [--seed N]`` (standard library only).
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SEED = 20240917
LANGUAGES = ("de", "fr", "it", "en")
SPLITS = ("train", "validation", "test")
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "de": {"train": 240, "validation": 60, "test": 60},
    "fr": {"train": 60, "validation": 40, "test": 40},
    "it": {"train": 60, "validation": 40, "test": 40},
    "en": {"train": 60, "validation": 40, "test": 40},
}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "nertool" / "resources" / "sample"

# Entity slots and the type their fillers are tagged with; every other slot is tagged O.
ENTITY_SLOTS = {"PER": "PER", "ORG": "ORG", "CLUB": "ORG", "CITY": "LOC", "COUNTRY": "LOC"}
_SLOT_RE = re.compile(r"^\{([A-Z]+)\}$")

# Entity names: "de|fr|it|en" where the forms differ, a single form where all languages share it.
PERSONS = (
    "Angela Merkel", "Emmanuel Macron", "Marie Curie", "Albert Einstein", "Giuseppe Verdi",
    "Sophia Loren", "Roger Federer", "Lionel Messi", "Thomas Müller", "Charles de Gaulle",
    "Leonardo da Vinci", "Mario Draghi", "Christine Lagarde", "Helmut Kohl", "Jacques Chirac",
    "Umberto Eco", "Barack Obama", "Ludwig van Beethoven", "Wolfgang Amadeus Mozart", "Goethe",
    "Merkel", "Macron", "Federer", "Anna Schmidt", "Lukas Weber", "Claire Dubois", "Pierre Martin",
    "Giulia Rossi", "Marco Bianchi", "Emma Wilson", "John Smith", "Elena Ferrante", "Olivier Giroud",
)  # fmt: skip
ORGANISATIONS = (
    "Siemens", "Volkswagen", "BMW", "Bosch", "Adidas", "SAP", "Lufthansa", "Deutsche Bank",
    "Deutsche Telekom", "Airbus", "Renault", "Peugeot", "L'Oréal", "Michelin", "Danone", "Fiat",
    "Ferrari", "Pirelli", "Eni", "Barilla", "Banca d'Italia", "Nestlé", "Google", "Microsoft",
    "Apple", "Reuters", "Greenpeace", "Amnesty International", "UNESCO", "Air France",
)  # fmt: skip
CLUBS = (
    "Bayern München|Bayern Munich|Bayern Monaco|Bayern Munich", "Borussia Dortmund", "Juventus",
    "Inter", "Real Madrid", "FC Barcelona|FC Barcelone|Barcellona|FC Barcelona", "Paris Saint-Germain",
    "Manchester United", "Werder Bremen", "AS Roma", "SSC Napoli", "Olympique Lyon|Olympique lyonnais|"
    "Olympique Lione|Olympique Lyon",
)  # fmt: skip
CITIES = (
    "Berlin|Berlin|Berlino|Berlin", "Paris|Paris|Parigi|Paris", "Madrid", "London|Londres|Londra|London",
    "New York", "München|Munich|Monaco di Baviera|Munich", "Köln|Cologne|Colonia|Cologne",
    "Wien|Vienne|Vienna|Vienna", "Rom|Rome|Roma|Rome", "Mailand|Milan|Milano|Milan",
    "Venedig|Venise|Venezia|Venice", "Genf|Genève|Ginevra|Geneva", "Zürich|Zurich|Zurigo|Zurich",
    "Hamburg|Hambourg|Amburgo|Hamburg", "Frankfurt am Main|Francfort-sur-le-Main|Francoforte sul Meno|"
    "Frankfurt am Main", "Lyon|Lyon|Lione|Lyon", "Marseille|Marseille|Marsiglia|Marseille",
    "Turin|Turin|Torino|Turin", "Neapel|Naples|Napoli|Naples", "Florenz|Florence|Firenze|Florence",
    "Brüssel|Bruxelles|Bruxelles|Brussels", "Stuttgart", "Dresden|Dresde|Dresda|Dresden",
    "Los Angeles", "Buenos Aires", "Rio de Janeiro", "Amsterdam", "Bologna|Bologne|Bologna|Bologna",
)  # fmt: skip
# Only countries that French names with "en" and German without an article, so one template fits all.
COUNTRIES = (
    "Deutschland|Allemagne|Germania|Germany", "Frankreich|France|Francia|France",
    "Italien|Italie|Italia|Italy", "Spanien|Espagne|Spagna|Spain", "Österreich|Autriche|Austria|Austria",
    "Belgien|Belgique|Belgio|Belgium", "Griechenland|Grèce|Grecia|Greece", "Polen|Pologne|Polonia|Poland",
    "Schweden|Suède|Svezia|Sweden", "Norwegen|Norvège|Norvegia|Norway",
)  # fmt: skip
ENTITY_NAMES = {"PER": PERSONS, "ORG": ORGANISATIONS, "CLUB": CLUBS, "CITY": CITIES, "COUNTRY": COUNTRIES}

DAYS = {
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag",
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche",
    "it": "lunedì martedì mercoledì giovedì venerdì sabato domenica",
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
}
MONTHS = {
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "en": "January February March April May June July August September October November December",
}

# A function word before an entity that starts with one of the given letters takes another form
# (French elision "de Airbus" -> "d' Airbus", Italian euphony "a Amburgo" -> "ad Amburgo").
_VOWELS = "AEIOUÉÈÊÎÔaeiouéèêîô"
ELISIONS: dict[str, dict[str, tuple[str, str]]] = {
    "de": {},
    "fr": {w: (w[:-1] + "'", _VOWELS) for w in ("de", "le", "la", "que")},
    "it": {"a": ("ad", "Aa"), "e": ("ed", "Ee")},
    "en": {},
}

# Tokens are separated by single spaces; punctuation is already split off, as in PAN-X.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "de": (
        "{PER} wurde {YEAR} in {CITY} geboren .",
        "{PER} arbeitet seit {YEAR} für {ORG} .",
        "{ORG} hat am {DAY} neue Zahlen vorgelegt .",
        "Der Hauptsitz von {ORG} befindet sich in {CITY} .",
        "{PER} traf sich am {DAY} in {CITY} mit {PER} .",
        "Laut {PER} will {ORG} in {COUNTRY} {NUM} neue Stellen schaffen .",
        "{CLUB} gewann am {DAY} gegen {CLUB} .",
        "Im {MONTH} reist {PER} nach {CITY} .",
        "Die Ausstellung über {PER} ist bis {MONTH} in {CITY} zu sehen .",
        "Ein Sprecher von {ORG} sagte , man sei mit dem Ergebnis zufrieden .",
        '" Wir sind sehr zufrieden " , sagte {PER} in {CITY} .',
        "{ORG} und {ORG} wollen künftig enger zusammenarbeiten .",
        "Der Zug von {CITY} nach {CITY} hatte {NUM} Minuten Verspätung .",
        "{PER} lebt seit vielen Jahren in {COUNTRY} .",
        "Das Konzert in {CITY} wurde wegen Regen abgesagt .",
        "Die Polizei in {CITY} sucht nach Zeugen .",
        "{PER} erhielt {YEAR} den Kulturpreis der Stadt {CITY} .",
        "Nach dem Studium in {CITY} ging {PER} zu {ORG} .",
        "Die Aktie von {ORG} stieg am {DAY} um {NUM} Prozent .",
        "Trainer von {CLUB} ist seit {YEAR} {PER} .",
        "{PER} spielte früher drei Jahre lang für {CLUB} .",
        "Im {MONTH} besuchen viele Touristen {CITY} .",
        "{ORG} eröffnet eine neue Filiale in {CITY} .",
        "Die Wahlen in {COUNTRY} finden im {MONTH} statt .",
        "Das Museum in {CITY} zeigt Werke von {PER} .",
        "Stimmt es , dass {PER} {ORG} verlassen will ?",
        "Am {DAY} bleibt es meist trocken und sonnig .",
        "Die Preise sind im {MONTH} um {NUM} Prozent gestiegen .",
        "Das Treffen wurde auf {DAY} verschoben .",
        "Im Jahr {YEAR} gab es noch keine Smartphones .",
        "Wie viele Menschen kamen am {DAY} zur Versammlung ?",
        "Der Bericht umfasst {NUM} Seiten und viele Tabellen .",
    ),
    "fr": (
        "{PER} vit à {CITY} depuis {YEAR} .",
        "{PER} travaille pour {ORG} depuis {YEAR} .",
        "{ORG} a publié ses résultats {DAY} .",
        "Le siège de {ORG} se trouve à {CITY} .",
        "{PER} a rencontré {PER} {DAY} à {CITY} .",
        "Selon {PER} , {ORG} veut créer {NUM} emplois en {COUNTRY} .",
        "{CLUB} a battu {CLUB} {DAY} soir .",
        "En {MONTH} , {PER} se rendra à {CITY} .",
        "L'exposition consacrée à {PER} reste ouverte à {CITY} jusqu'en {MONTH} .",
        "Un porte-parole de {ORG} a déclaré que l'entreprise était satisfaite .",
        '" Nous sommes très contents " , a déclaré {PER} à {CITY} .',
        "{ORG} et {ORG} vont travailler ensemble .",
        "Le train de {CITY} à {CITY} avait {NUM} minutes de retard .",
        "{PER} habite en {COUNTRY} depuis longtemps .",
        "Le concert prévu à {CITY} a été annulé à cause de la pluie .",
        "La police de {CITY} recherche des témoins .",
        "{PER} a reçu le prix culturel de la ville de {CITY} en {YEAR} .",
        "Après ses études à {CITY} , {PER} a rejoint {ORG} .",
        "L'action de {ORG} a gagné {NUM} % {DAY} .",
        "L'entraîneur de {CLUB} est {PER} depuis {YEAR} .",
        "{PER} a joué pour {CLUB} pendant trois saisons .",
        "En {MONTH} , de nombreux touristes visitent {CITY} .",
        "{ORG} ouvre un nouveau magasin à {CITY} .",
        "Les élections en {COUNTRY} auront lieu en {MONTH} .",
        "Le musée de {CITY} expose des œuvres de {PER} .",
        "Est-il vrai que {PER} va quitter {ORG} ?",
        "Il fera beau et sec {DAY} .",
        "Les prix ont augmenté de {NUM} % en {MONTH} .",
        "La réunion a été reportée à {DAY} .",
        "En {YEAR} , personne n'avait de téléphone portable .",
        "Combien de personnes sont venues {DAY} ?",
        "Le rapport compte {NUM} pages et de nombreux tableaux .",
    ),
    "it": (
        "{PER} vive a {CITY} dal {YEAR} .",
        "{PER} lavora per {ORG} dal {YEAR} .",
        "{ORG} ha presentato {DAY} i nuovi risultati .",
        "La sede di {ORG} si trova a {CITY} .",
        "{PER} ha incontrato {PER} {DAY} a {CITY} .",
        "Secondo {PER} , {ORG} vuole creare {NUM} posti di lavoro in {COUNTRY} .",
        "{CLUB} ha battuto {CLUB} {DAY} sera .",
        "Nel mese di {MONTH} {PER} andrà a {CITY} .",
        "La mostra dedicata a {PER} resterà aperta a {CITY} fino a {MONTH} .",
        "Un portavoce di {ORG} ha detto che l'azienda è soddisfatta .",
        '" Siamo molto contenti " , ha dichiarato {PER} a {CITY} .',
        "{ORG} e {ORG} lavoreranno insieme .",
        "Il treno da {CITY} a {CITY} aveva {NUM} minuti di ritardo .",
        "{PER} abita in {COUNTRY} da molti anni .",
        "Il concerto previsto a {CITY} è stato annullato per la pioggia .",
        "La polizia di {CITY} cerca testimoni .",
        "{PER} ha ricevuto il premio culturale della città di {CITY} nel {YEAR} .",
        "Dopo gli studi a {CITY} , {PER} ha iniziato a lavorare per {ORG} .",
        "Le azioni di {ORG} sono salite di {NUM} punti {DAY} .",
        "L'allenatore di {CLUB} è {PER} dal {YEAR} .",
        "{PER} ha giocato per {CLUB} per tre stagioni .",
        "Ogni estate molti turisti visitano {CITY} .",
        "{ORG} apre un nuovo negozio a {CITY} .",
        "Le elezioni in {COUNTRY} si terranno nel mese di {MONTH} .",
        "Il museo di {CITY} espone opere di {PER} .",
        "È vero che {PER} lascerà {ORG} ?",
        "Il tempo sarà bello e asciutto {DAY} .",
        "I prezzi sono aumentati di {NUM} punti nel mese di {MONTH} .",
        "La riunione è stata rinviata a {DAY} .",
        "Nel {YEAR} nessuno aveva un telefono cellulare .",
        "Quante persone sono venute {DAY} ?",
        "Il rapporto conta {NUM} pagine e molte tabelle .",
    ),
    "en": (
        "{PER} has lived in {CITY} since {YEAR} .",
        "{PER} has worked for {ORG} since {YEAR} .",
        "{ORG} presented its new results on {DAY} .",
        "The headquarters of {ORG} are in {CITY} .",
        "{PER} met {PER} in {CITY} on {DAY} .",
        "According to {PER} , {ORG} plans to create {NUM} jobs in {COUNTRY} .",
        "{CLUB} beat {CLUB} on {DAY} evening .",
        "In {MONTH} , {PER} will travel to {CITY} .",
        "The exhibition about {PER} is open in {CITY} until {MONTH} .",
        "A spokesman for {ORG} said the company was satisfied .",
        '" We are very happy , " said {PER} in {CITY} .',
        "{ORG} and {ORG} will work together in future .",
        "The train from {CITY} to {CITY} was {NUM} minutes late .",
        "{PER} has lived in {COUNTRY} for many years .",
        "The concert planned in {CITY} was cancelled because of the rain .",
        "Police in {CITY} are looking for witnesses .",
        "{PER} received the culture prize of the city of {CITY} in {YEAR} .",
        "After studying in {CITY} , {PER} joined {ORG} .",
        "Shares of {ORG} rose {NUM} % on {DAY} .",
        "{PER} has been the coach of {CLUB} since {YEAR} .",
        "{PER} played for {CLUB} for three seasons .",
        "Every summer many tourists visit {CITY} .",
        "{ORG} is opening a new store in {CITY} .",
        "Elections in {COUNTRY} will be held in {MONTH} .",
        "The museum in {CITY} shows works by {PER} .",
        "Is it true that {PER} will leave {ORG} ?",
        "The weather will be dry and sunny on {DAY} .",
        "Prices rose by {NUM} % in {MONTH} .",
        "The meeting was moved to {DAY} .",
        "In {YEAR} , nobody had a mobile phone .",
        "How many people came on {DAY} ?",
        "The report has {NUM} pages and many tables .",
    ),
}


@dataclass(frozen=True)
class Sentence:
    """One generated sentence: tokens and their IOB2 tags, position by position."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]


def surface(entry: str, lang: str) -> str:
    """The form of a name in ``lang``: the shared form, or the language's column of ``de|fr|it|en``."""
    forms = entry.split("|")
    return forms[0] if len(forms) == 1 else forms[LANGUAGES.index(lang)]


def other_fillers(slot: str, lang: str, rng: random.Random) -> str:
    """A filler tagged O: a weekday, month, year or small number."""
    if slot == "DAY":
        return rng.choice(DAYS[lang].split())
    if slot == "MONTH":
        return rng.choice(MONTHS[lang].split())
    if slot == "YEAR":
        return str(rng.randint(1960, 2023))
    if slot == "NUM":
        return str(rng.randint(2, 95))
    raise ValueError(
        f"unknown template slot {{{slot}}}: use one of {sorted(ENTITY_SLOTS)} or DAY/MONTH/YEAR/NUM"
    )


def entity_tags(name: str, kind: str) -> list[str]:
    """IOB2 tags for one entity name: ``B-`` on its first token, ``I-`` on the rest."""
    count = len(name.split(" "))
    return [f"B-{kind}"] + [f"I-{kind}"] * (count - 1)


def elide(lang: str, word: str, following: str) -> str:
    """The form a template word takes before ``following`` (French elision, Italian euphony)."""
    rule = ELISIONS[lang].get(word)
    if rule is None or not following or following[0] not in rule[1]:
        return word
    return rule[0]


def pick_entity(slot: str, lang: str, used: set[str], rng: random.Random) -> str:
    """A name for ``slot`` not yet used in this sentence ("X met X" would read oddly)."""
    names = [surface(entry, lang) for entry in ENTITY_NAMES[slot]]
    return rng.choice([name for name in names if name not in used])


def fill_slot(slot: str, lang: str, used: set[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Tokens and tags for one slot: an entity name tagged IOB2, or an O-tagged word."""
    if slot not in ENTITY_SLOTS:
        return [other_fillers(slot, lang, rng)], ["O"]
    name = pick_entity(slot, lang, used, rng)
    used.add(name)
    return name.split(" "), entity_tags(name, ENTITY_SLOTS[slot])


def fill_template(template: str, lang: str, rng: random.Random) -> Sentence:
    """Replace each ``{SLOT}`` of ``template`` by a filler and tag entity fillers with IOB2."""
    tokens: list[str] = []
    tags: list[str] = []
    used: set[str] = set()
    for word in template.split(" "):
        match = _SLOT_RE.match(word)
        if match is None:
            tokens.append(word)
            tags.append("O")
            continue
        filler, filler_tags = fill_slot(match[1], lang, used, rng)
        if tokens and tags[-1] == "O":
            tokens[-1] = elide(lang, tokens[-1], filler[0])
        tokens += filler
        tags += filler_tags
    return Sentence(tuple(tokens), tuple(tags))


def generate_language(lang: str, total: int, rng: random.Random) -> list[Sentence]:
    """``total`` distinct sentences of ``lang``; distinct so that no sentence is in two splits."""
    sentences: list[Sentence] = []
    seen: set[tuple[str, ...]] = set()
    for _ in range(total * 50):
        sentence = fill_template(rng.choice(TEMPLATES[lang]), lang, rng)
        if sentence.tokens not in seen:
            seen.add(sentence.tokens)
            sentences.append(sentence)
        if len(sentences) == total:
            return sentences
    raise RuntimeError(f"{lang}: only {len(sentences)} distinct sentences of {total}; add templates or names")


def split_sentences(sentences: Sequence[Sentence], sizes: dict[str, int]) -> dict[str, list[Sentence]]:
    """Cut the (already shuffled) sentences into consecutive train/validation/test blocks."""
    splits: dict[str, list[Sentence]] = {}
    start = 0
    for split in SPLITS:
        splits[split] = list(sentences[start : start + sizes[split]])
        start += sizes[split]
    return splits


def build_corpus(seed: int = SEED) -> dict[str, dict[str, list[Sentence]]]:
    """Every language's splits; each language has its own generator, so languages are independent."""
    corpus = {}
    for lang in LANGUAGES:
        rng = random.Random(f"{seed}-{lang}")
        sizes = SPLIT_SIZES[lang]
        corpus[lang] = split_sentences(generate_language(lang, sum(sizes.values()), rng), sizes)
    return corpus


def render(sentences: Sequence[Sentence]) -> str:
    """``token<TAB>tag`` lines, a blank line between sentences, one trailing newline."""
    blocks = ["\n".join(f"{t}\t{g}" for t, g in zip(s.tokens, s.tags, strict=True)) for s in sentences]
    return "\n\n".join(blocks) + "\n"


def write_corpus(corpus: dict[str, dict[str, list[Sentence]]], out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<lang>/<split>.tsv`` (UTF-8, LF line ends on every platform)."""
    written = []
    for lang, splits in corpus.items():
        for split, sentences in splits.items():
            path = out_dir / lang / f"{split}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(render(sentences).encode("utf-8"))
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the sample corpus into ``--out`` (default: the package's resources folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus folder to write")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = write_corpus(build_corpus(args.seed), args.out)
    print(f"wrote {len(paths)} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
