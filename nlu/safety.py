"""The safety net: a deterministic FR/EN lexicon of immediate danger, run before any engine.

It can only add `emergency`, never remove it. Matching runs on folded text (no accents,
lower case, stretched letters collapsed, "don't" -> "do not"), and strong words also match
with one typo ("sucide", "chantag"). A trigger preceded closely by a negation ("personne
n'est en danger", "no one is in danger", "pas d'arme") does not fire, unless the sentence
voices a doubt ("je sais pas si elle est en danger"): in doubt, the net fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from nlu.folding import fold


def _words(text: str) -> tuple[str, ...]:
    """Split a space-separated word list."""
    return tuple(text.split())


SUICIDE: Final = "suicide_self_harm"
VIOLENCE: Final = "threat_of_violence"
WEAPON: Final = "weapon"
SEXTORTION: Final = "sextortion"
ADULT: Final = "adult_soliciting"
MISSING: Final = "missing_student"
DANGER: Final = "immediate_danger"

_NEGATORS: Final = frozenset(
    _words(
        "pas plus pu aucun aucune personne jamais rien ni sans no not nobody none never nothing"
        " without"
    )
)
# "une personne est en danger" is not a negation.
_PERSON_DETERMINERS: Final = frozenset(_words("une la cette chaque autre quelle"))
_DOUBTS: Final = frozenset(
    _words(
        "si if whether sais sait savons know knows sure certain certaine peut etre maybe"
        " might possible crois croit think thinks pense pensent afraid peur scared worried"
        " inquiete inquiet"
    )
)
_CONCESSIVE: Final = frozenset(_words("si if"))
_EVEN: Final = frozenset(_words("meme even"))
_NEGATION_WINDOW: Final = 4
# A question about danger the user reports (the dispatcher's), and their answer: no.
_ASKED: Final = re.compile(
    r"\b(?:asked|asks|asking|demande|demandait|demandaient)(?: \w+)? (?:if|whether|si|s il)\b"
)
_ANSWERED_NO: Final = re.compile(
    r"\b(?:i|we) (?:said|answered|told (?:them|him|her))(?: that)? (?:no|nope|not)\b"
    r"|\b(?:j ai|jai|on a|nous avons) (?:dit|repondu)(?: que)? non\b"
)
_WORD: Final = re.compile(r"[a-z0-9]+")

_SELF = r"(?:him|her|my|them|your|our|one)sel(?:f|ves)"
# "se pendre au téléphone" is to be on the phone for long.
_NOT_ON_THE_PHONE = r"(?! (?:au|a son|a sa|a mon) (?:telephone|tel|cell|cellulaire|phone))"
_PRONOUN_OBJ = r"(?:le |la |les |l |te |me |lui |leur |vous )?"
# "menace de venir le poignarder", "va aller la battre"
_COMING = r"(?:venir |aller |revenir |passer )?"
_ADULT_SUBJECT = (
    r"(?:\b(?:un |une |an |a |some )(?:adulte|adult|homme|man|femme|woman|monsieur|inconnu"
    r"|inconnue|stranger|majeur)\b|\b(?:old|older|grown|vieux|vieil) (?:man|men|guy|dude|gars"
    r"|monsieur|homme|woman|femme)\b|\bun vieux\b|\bgrown up\b"
    r"|\b(?:de |a |age de |agee de )?(?:1[89]|[2-9][0-9]) ?(?:ans|year|years|yr|yrs|yo)\b)"
)
_STAFF_SUBJECT = (
    r"\b(?:un |une |a |an |our |one of our |notre |nos )(?:prof|profs|professeur|professeure"
    r"|enseignant|enseignante|teacher|teachers|coach|coaches|entraineur|entraineuse|employe"
    r"|employee|staff member|surveillant|surveillante|chauffeur|bus driver|concierge|janitor"
    r"|animateur|animatrice|stagiaire|tuteur|tutor)\b"
)
_CONTACT_VERB = (
    r"(?:demand\w*|exig\w*|ask\w*|messag\w*|text\w*|dm\w*|ecri\w*|contact\w*|harcel\w*"
    r"|harass\w*|drague\w*|flirt\w*|sollicit\w*|solicit\w*|groom\w*|propos\w*|envoie\w*"
    r"|envoy\w*|send\w*|sent|pressur\w*|sext\w*|invit\w*)"
)
_WANT_VERB = r"(?:veut|voulait|veulent|want\w*|wanna)"
_TARGET = (
    r"(?:lui|leur|her|him|them|l eleve|une eleve|un eleve|des eleves|the student|a student"
    r"|(?:une|un) de (?:nos|mes) eleves|one of (?:our|my) students"
    r"|students|the girl|the boy|the kid|a kid|kids|la fille|le gars|une fille|un gars"
    r"|a girl|a boy|ma fille|mon fils|sa fille|son fils|la victime|the victim)"
)
_AUX = r"(?:(?:qui |who |has |have |had |is |was |were |keeps |kept |been |a |avait "
_AUX += r"|est en train de |arrete pas de |continue de |n arrete pas de )*)"
_MEDIA = r"(?:photos?|pics?|pictures?|nudes?|videos?|selfies?|images?|snaps?|nudes)"
_MEETING = (
    r"(?:rencontr\w*|meet\w*|sortir|date|rendez vous|chez (?:lui|elle)|seule?s?|alone"
    r"|hotel|voiture|car)"
)
# A meeting "with" someone who is not the student ("asks for a meeting with the principal",
# "wants to meet with us") is a parent or a caller, not an adult luring a student.
# The student as named after "with": "the girl", "one of our students", "une des élèves".
_TARGET_NAMED = (
    r"(?:(?:a|the|une|un|des|one of (?:the|our|my)|(?:une|un) des) )?" + _TARGET + r"\b"
)
# Nor is meeting the staff: "veut nous rencontrer", "wants to meet us".
_MEETING_ALONE = (
    r"(?<!\bnous )(?<!\bvous )(?:"
    + _MEETING
    + r")\b(?! (?:with|avec) (?!"
    + _TARGET_NAMED
    + r"))(?! (?:us|you)\b)"
)
# An adult arranging a meeting: "un homme de 26 ans qui lui donne rendez-vous", "an adult set
# up a meeting with the girl".
_ARRANGE_VERB = r"(?:donn\w*|fix\w*|set\w* up|arrang\w*|plann?\w*|organi[sz]\w*|booked)"


@dataclass(frozen=True, slots=True)
class _Trigger:
    """One lexicon entry: a category, a regex on folded text, whether negation cancels it, and
    whether a question the user reports and answered no to cancels it."""

    category: str
    pattern: re.Pattern[str]
    negatable: bool
    answerable: bool


def _t(
    category: str, pattern: str, *, negatable: bool = True, answerable: bool = False
) -> _Trigger:
    """Compile one lexicon entry."""
    return _Trigger(category, re.compile(pattern), negatable, answerable)


# "the phone is about to die", "it's going to die soon": a battery, not a student.
_NOT_A_DEVICE: Final = "".join(
    rf"(?<!\b{device}{verb})"
    for device in ("phone", "phones", "cell", "battery", "ipad", "tablet", "laptop", "it", "its")
    for verb in (" ", " is ", " s ", " are ")
)

_TRIGGERS: Final[tuple[_Trigger, ...]] = (
    # Suicide and self-harm.
    _t(
        SUICIDE,
        r"\bse (?:suicider|tuer|pendre|mutiler|scarifier|couper|blesser|faire du mal"
        r"|faire mal|jeter (?:du|d un|en bas|sous|devant)|lancer (?:du|d un|en bas|devant))"
        + _NOT_ON_THE_PHONE,
    ),
    _t(
        SUICIDE,
        r"\bse (?:coupe|coupent|scarifie|scarifient|mutile|mutilent|fai[ts] du mal"
        r"|fai[ts] mal expres|blesse expres|pend|pendait)\b" + _NOT_ON_THE_PHONE,
    ),
    _t(
        SUICIDE,
        r"\bs (?:est|etait|etre) (?:coupee?|scarifiee?|mutilee?|blessee? expres|pendue?"
        r"|fait du mal|fait mal expres|ouvert les veines)",
    ),
    _t(
        SUICIDE,
        r"\b(?:veu[tx]|voulai[st]|voudrai[st]|envie de|parle de|parlait de|pense a"
        r"|aimerait|aimerais|prefere|preferer|menace de) (?:juste |seulement )?(?:mour+ir|crever"
        r"|disparaitre|en finir|s en aller pour toujours)",
    ),
    _t(SUICIDE, r"\b(?:veut|veux|voulait|va|vais|allait) en finir\b"),
    _t(SUICIDE, r"\bmettre fin a (?:ses|sa|mes|ma|leurs|leur|tes|ta) (?:jours|vie)"),
    _t(SUICIDE, r"\bidees? (?:noires?|suicidaires?|de mort)"),
    _t(
        SUICIDE,
        r"\b(?:plus|pu|pas|aucune?) (?:d |de )?(?:envie|gout|raison|le gout|la force) de vivre",
        negatable=False,
    ),
    _t(
        SUICIDE,
        r"\b(?:vaut|vaux) (?:plus|pu|pas) la peine (?:de vivre|d etre en vie)",
        negatable=False,
    ),
    _t(SUICIDE, r"\b(?:veut|veux|voulait) (?:plus|pu|pas) vivre", negatable=False),
    # Said of oneself, at one remove: "everyone would be better off without her".
    _t(
        SUICIDE,
        r"\b(?:serai[ts]?|seraient|serions|seriez) (?:tous |toutes )?(?:bien )?mieux"
        r" sans (?:moi|elle|lui)\b|\bsont mieux sans moi\b|\bbetter off without me\b"
        r"|\b(?:would|d|will|ll) (?:all )?be better off without (?:her|him)\b"
        r"|\bbetter off if (?:i|she|he) (?:was|were) (?:dead|gone|not here|not around)",
    ),
    _t(
        SUICIDE,
        r"\b(?:veu[tx]|voudrai[st]|aimerai[st]|souhaite) (?:juste |seulement )?(?:d )?etre"
        r" morte?s?\b|\bwish(?:es|ed)? (?:she|he|i) (?:was|were) (?:dead|never born)",
    ),
    # Death over what is happening: "she'd rather be dead than go back to class".
    _t(
        SUICIDE,
        r"\b(?:rather|sooner) (?:be dead|die|not be alive|not exist|not live)\b"
        r"|\b(?:aime|aimerai[st]|aimait|prefere|preferai[st]|prefererai[st])"
        r" (?:mieux|plutot|encore mieux) (?:mour+ir|crever|etre morte?s?)\b",
    ),
    _t(
        SUICIDE,
        r"\blettre d adieu|\bmessage d adieu|\bgoodbye (?:note|letter|message|post)"
        r"|\bsuicide note",
    ),
    _t(SUICIDE, r"\b(?:sauter|jump|jumping) (?:du|d un|en bas|par la|off|from)\b"),
    _t(
        SUICIDE,
        r"\b(?:pris|avale|took|swallowed|taken) (?:des|plein de|une boite de|un paquet de"
        r"|tous ses|toutes ses|a bunch of|a lot of|all (?:her|his) |some |too many |a handful of"
        r")?\s?(?:pilules|medicaments|comprimes|pills|meds|tablets)",
    ),
    # Pills within reach and a plan to take them: "she's gonna take them all tonight".
    _t(
        SUICIDE,
        r"\b(?:pills|meds|medication|tablets|pilules|medicaments|comprimes)\b.{0,60}?\b(?:take"
        r"|swallow|prendre|avaler)\w* (?:them all|all of them|toutes|tous|the whole)\b"
        r"|\b(?:gonna|going to|wants to|va|vais|veut) (?:take|swallow|prendre|avaler)"
        r" (?:all (?:her|his|my|the|those) |toutes? (?:ses|mes|les) )(?:pills|meds|pilules"
        r"|medicaments|comprimes)\b",
    ),
    # "going to swallow everything in her mom's medicine cabinet".
    _t(
        SUICIDE,
        r"\b(?:take|swallow|prendre|avaler)\w* (?:everything|all|tout|tout ce qu il y a)"
        r" (?:in|from|of|out of|de|du|dans|dans la|dans le) (?:\w+ ){0,3}?(?:medicine"
        r"|pharmacie|pills|meds|pilules|medicaments|comprimes)",
    ),
    _t(SUICIDE, r"\b(?:overdose|surdose|od ed)\b"),
    _t(SUICIDE, r"\bkill(?:s|ing|ed)? " + _SELF + r"|\bkms\b|\bunalive"),
    _t(
        SUICIDE,
        r"\bshoot(?:s|ing)? "
        + _SELF
        + r"(?! in the foot)|\bhang(?:s|ing)? "
        + _SELF
        + r"|\bse (?:tirer|tire|tirait) une balle(?! dans le pied)",
    ),
    # A farewell: "this is my last day" on a story; not "my last day before the holidays".
    _t(
        SUICIDE,
        r"\b(?:this is|today is|c est|aujourd hui c est) (?:my|mon) (?:last|dernier)"
        r" (?:day|jour)\b"
        r"(?! (?:of|at|before|here|off|d ecole|a l ecole|avant|ici|de (?:travail|classe|cours)))",
    ),
    # "doesn't want to wake up tomorrow": the negation is the danger.
    _t(
        SUICIDE,
        r"\b(?:not|never) (?:want|wants|wanting|wanted) to wake up\b"
        r"|\b(?:veu[tx]|voulait|voudrai[st]) (?:plus|pu|pas|jamais) se reveiller\b",
        negatable=False,
    ),
    _t(
        SUICIDE,
        r"\b(?:end|ending|take|taking|finish|finishing) (?:with )?(?:it all|(?:his|her|my|their"
        r"|your) (?:own )?life)",
    ),
    _t(
        SUICIDE,
        r"\b"
        + _NOT_A_DEVICE
        + r"(?:want|wants|wanted|going|gonna|talk\w* about|think\w* about|plan\w*"
        r"|threaten\w*|will|ll|about) (?:to )?(?:end it|die\b|be dead)",
    ),
    # "wants to not be here"; but "the officer won't be here for a while" is only late.
    _t(
        SUICIDE,
        r"\b(?:want|wants|wanted|going|gonna|talk\w* about|think\w* about|plan\w*"
        r"|threaten\w*|about) (?:to )?not be here",
    ),
    _t(SUICIDE, r"\bnot (?:want|wanting) to (?:live|be alive|be here|exist)", negatable=False),
    # "she has no reason to live", "doesn't see the point anymore": the negation is the danger.
    _t(
        SUICIDE,
        r"\b(?:no|not any|not a|nothing|lost (?:her|his|their|my|the|all) ?)"
        r"(?: more| other| good)? (?:reason|will|desire|point) (?:to live|in living|of living"
        r"|to go on|to keep going|to be alive|in life)\b(?! with\b)"
        r"|\b(?:does|do|did) not see (?:the |any )?point (?:anymore|any more|in living|of living"
        r"|in life|in anything|of anything)",
        negatable=False,
    ),
    _t(
        SUICIDE,
        r"\b(?:hurt|hurts|hurting|harm|harms|harming|cut|cuts|cutting|injur\w*"
        r"|burn\w*|starv\w*) " + _SELF,
    ),
    _t(SUICIDE, r"\bself ?(?:harm\w*|injur\w*|mutilat\w*)"),
    # Wounds made on one's own body: "elle s'est scratchée les bras avec un compas".
    _t(
        SUICIDE,
        r"\bs (?:est|etait) (?:scratche|grafigne|griffe|entaille|taillade|brule|lacere)e?s?"
        r" (?:les |le |la |ses |son |sa )?(?:bras|poignets?|cuisses?|jambes?|ventre|peau)\b"
        r"|\b(?:cut|cuts|cutting|slash\w*|carv\w*|scratch\w*|burns|burned|burnt|burning)"
        r" (?:on )?(?:her|his|their|my) (?:own )?(?:arms|wrists?|thighs?)\b",
    ),
    # Cuts seen on the body: "des coupures fraîches sur ses poignets".
    _t(
        SUICIDE,
        r"\b(?:coupures?|entailles?|taillades?|scarifications?|marques? de coupures?"
        r"|brulures?)"
        r"(?: \w+)? (?:sur|aux|au|a) (?:les |le |la |ses |son |sa |l )?(?:bras|poignets?"
        r"|cuisses?|jambes?|ventre|avant bras)\b",
    ),
    # Up high: "she's standing on the roof", "il est monté sur le pont"; not "the ball is on
    # the roof".
    _t(
        SUICIDE,
        r"\b(?:standing|sitting|climbed|climbing|went|debout|assise?|montee?s?|grimpee?s?)"
        r" (?:up )?(?:sur|on|onto|up on|en haut du?) (?:le |the |la |a |un )?(?:toit|roof|pont"
        r"|bridge|ledge|rebord|railing|parapet|garde fou)\b"
        r"|\b(?:she|he|they|elle|il|ils|elles|student|girl|boy|kid|victim|eleve|fille|gars"
        r"|victime) (?:s|is|are|est|sont|etait) (?:sur|on|up on)"
        r" (?:le |the )?(?:toit|roof|pont|bridge|ledge|rebord)\b",
    ),
    # Threats of violence.
    # Waiting for him to beat him up: "l'attend dehors pour lui régler son cas".
    _t(
        VIOLENCE,
        r"\battend\w*\b.{0,50}?\bpour (?:lui|leur|le|la|les) (?:regler (?:son|leur) (?:cas|compte)"
        r"|casser la (?:gueule|yeule|face)|sauter dessus|faire la peau|faire mal|taper dessus)"
        r"|\bwaiting\b.{0,50}?\bto (?:beat|jump|fight|hurt) (?:him|her|them)\b",
    ),
    # Revenge: "he's gonna make them all pay", "il va leur faire payer" (not "pay for the trip").
    _t(
        VIOLENCE,
        r"\bmake (?:them|him|her|everyone|everybody|you|y all) (?:all )?pay\b"
        r"(?! (?:for|the|a|an|back|fees?|rent|it|his|her|their|\d)\b)"
        r"|\b(?:va|vais|vont|veut|veulent) (?:leur|lui|te|vous) faire payer\b"
        r"(?! (?:le|la|les|l|des|du|pour|un|une)\b)",
    ),
    _t(
        VIOLENCE,
        r"\bmenac\w* (?:de |d )?"
        + _COMING
        + _PRONOUN_OBJ
        + r"(?:tuer|frapper|battre|poignarder|tirer|casser|violer|planter|blesser|agresser"
        r"|faire mal|descendre|attaquer|mort|tabasser)",
    ),
    _t(
        VIOLENCE,
        r"\b(?:va|vais|vont|allait|veut|veulent|voulait|menace de) "
        + _COMING
        + _PRONOUN_OBJ
        + r"(?:tuer|poignarder|descendre|planter|battre|tabasser|casser la gueule|violer"
        r"|frapper|attaquer|crisser une volee|sacrer une volee)",
    ),
    _t(
        VIOLENCE,
        r"\bpour " + _PRONOUN_OBJ + r"(?:frapper|battre|tabasser|tuer|poignarder"
        r"|planter|agresser|attaquer)",
    ),
    _t(
        VIOLENCE,
        r"\bse faire (?:tuer|battre|tabasser|planter|poignarder|casser la gueule"
        r"|agresser|violer|attaquer)",
    ),
    _t(
        VIOLENCE,
        r"\b(?:a ete|s est fait|s est faite|se fait|ont ete|a ete) (?:agressee?"
        r"|battue?|frappee?|tabassee?|violee?|attaquee?|menacee? de mort)",
    ),
    _t(VIOLENCE, r"\bmenaces? de mort|\bdeath threats?"),
    _t(
        VIOLENCE,
        r"\b(?:threat\w*|menac\w*) (?:to )?(?:kill|hurt|beat|stab|shoot|rape|jump|attack|harm"
        r"|murder|break)",
    ),
    _t(
        VIOLENCE,
        r"\b(?:going to|gonna|will|ll|wants to|wanna|want to|about to|trying to) "
        r"(?:kill|stab|shoot|beat up|beat|hurt|rape|attack|jump|murder|fight) "
        r"(?:him|her|them|you|me|the|that|this|a|some|everyone)",
    ),
    _t(
        VIOLENCE,
        r"\bbeat (?:him|her|them|you) up|\bget (?:beaten|jumped|stabbed|killed|shot"
        r"|murdered|hurt)\b|\b(?:was|got|been|being|were) (?:assaulted|attacked|beaten|raped"
        r"|jumped|stabbed|shot)\b",
    ),
    # Weapons.
    _t(
        WEAPON,
        r"\b(?:armes?|armee?s?|arme a feu|couteaux?|canif|fusils?|pistolets?|revolver"
        r"|carabine|machette|gun|guns|knife|knives|weapons?|firearms?|pistols?|rifle|shotgun"
        r"|blade|gunpoint|taser|lame de rasoir|razor blade|exacto)\b",
    ),
    # Ongoing sextortion and blackmail.
    _t(SEXTORTION, r"\b(?:fai[ts]?|faire|font|faisait|fera) chanter\b"),
    _t(
        SEXTORTION,
        r"\b(?:demand|exig|veu|reclam|want|demand|ask)\w* (?:de l argent|d argent"
        r"|du cash|de l cash|des cartes? cadeaux?|money|cash|gift ?cards?|bitcoin|crypto"
        r"|\d+ ?(?:\$|dollars|piasses|piastres)|\$ ?\d+|(?:d autres|plus de|more|other|new) "
        + _MEDIA
        + r")",
    ),
    _t(
        SEXTORTION,
        r"\bsinon (?:il|elle|ils|elles|on|y|le gars|la fille) (?:va |vont |allait )?"
        r"(?:publi|diffus|partag|envoi|envoy|mett|post|sort|montr|spread|leak|exposer)",
    ),
    _t(
        SEXTORTION,
        r"\bmenac\w* (?:de |d )?(?:la |les |le |l |lui )?(?:publier|diffuser|partager"
        r"|envoyer|mettre en ligne|poster|sortir|montrer|leak|exposer|afficher)",
    ),
    _t(
        SEXTORTION,
        r"\b(?:unless|or else|or he ll|or she ll|or they ll) .{0,40}"
        r"(?:pay|pays|paid|send|sends|money|more)",
    ),
    _t(
        SEXTORTION,
        r"\bif (?:she|he|they|you) (?:does not|do not|did not|will not|refuses? to"
        r"|wo not) .{0,20}(?:pay|send)",
    ),
    # "si elle lui envoie pas", joual "si a y envoie pas": money or pictures withheld, or else.
    _t(
        SEXTORTION,
        r"\bsi (?:elle|il|ils|tu|a|y) (?:lui |leur |y |me |te )?(?:paie|paye|envoie|donne)"
        r" (?:pas|plus|pu)",
    ),
    _t(
        SEXTORTION,
        r"\bthreat\w* (?:to )?(?:post|share|send|leak|publish|release|expose"
        r"|spread)",
    ),
    # "pay up or else", "paie sinon"; not "the parents will pay or the school will".
    _t(
        SEXTORTION,
        r"\b(?:pay|paie|paye) (?:up |me |moi )?(?:or (?:else|i|she|he|they|we|your|her|his|more"
        r"|their|everyone|everybody)|sinon|ou bien)\b|\b(?:ransom|rancon)\b",
    ),
    # "asking the boy for $500", "demande à la fille 200$": a sum of money asked of someone.
    _t(
        SEXTORTION,
        r"\b(?:demand|exig|reclam|ask|want)\w* (?:\w+ ){0,4}?(?:for )?(?:\d+ ?(?:\$|dollars"
        r"|piasses|piastres|bucks)|\$ ?\d+)",
    ),
    _t(
        SEXTORTION,
        r"\b(?:or|or else|otherwise|unless) (?:he|she|they|someone|somebody|the guy|it)"
        r"(?: ll| will| is going to| are going to| gets)? (?:leak|post|publish|release|expose"
        r"|spread|(?:send|share)s? (?:it|them|(?:the|his|her|their) " + _MEDIA + r")\b)",
    ),
    # "pay me or your parents get the pics": money asked, or someone is sent the pictures.
    _t(
        SEXTORTION,
        r"\b(?:pay|pays|paie|paye|payer)\b.{0,30}?\b(?:or|or else|otherwise|sinon|ou bien|ou)"
        r" (?:\w+ ){1,4}?(?:get|gets|see|sees|receive|receives|will get|will see|recoivent|recoit"
        r"|voient|voit|vont voir|va voir|vont recevoir|va recevoir) (?:the |your |her |his |all "
        r"|tes |ses |les |toutes (?:tes|ses|les) )?(?:\w+ )?" + _MEDIA + r"\b",
    ),
    # "tu m'envoies 200$ ce soir ou je poste tout": money asked, or I put it out.
    _t(
        SEXTORTION,
        r"(?:\b(?:pay|pays|paie|paye|payer|money|argent|cash)\b|\d+ ?(?:\$|dollars|piasses"
        r"|piastres|bucks)|\$ ?\d+).{0,60}?\b(?:or|or else|otherwise|sinon|ou sinon|ou bien"
        r"|ou) (?:je|j|i)(?: vais| va| ll| will| am going to| m going to)? (?:(?:te |t )?(?:la"
        r"|les|l) (?:poste|publie|partage|envoie|mets|diffuse|sors|montre)|(?:poste|publie"
        r"|partage|envoie|mets|diffuse|sors|montre|expose|post|leak|send|share|publish|spread"
        r"|release) (?:tout|toutes tes|tes|ta|ton|ca|it|them|everything|your|all|(?:la|les|the"
        r"|ces|those|these|ses|sa|son|his|her) (?:\w+ )?" + _MEDIA + r"))",
    ),
    # "pay 500$ or her nudes go to all her followers": money asked, or the pictures go out.
    _t(
        SEXTORTION,
        r"(?:\b(?:pay|pays|paie|paye|payer|money|argent|cash|gift ?cards?|cartes? cadeaux?)\b"
        r"|\d+ ?(?:\$|dollars|piasses|piastres|bucks)|\$ ?\d+).{0,60}?\b(?:or|or else"
        r"|otherwise|sinon|ou sinon|ou bien|ou) (?:her|his|their|the|your|ses|sa|son|les|tes|ta"
        r"|ton|leurs) (?:\w+ )?" + _MEDIA + r" (?:go|goes|get|gets|will|are going|is going"
        r"|gonna|end up|vont|va|seront|sera|s en vont|finissent|finiront|se retrouvent"
        r"|se retrouveront)\b",
    ),
    # An adult soliciting a student.
    _t(
        ADULT,
        r"\b(?:predateur|predatrice|predators?|pedophiles?|pedos?|pedophilie|leurre|leurrer"
        r"|leurree?|leurrage|luring|lured|grooming|groomed|grooms|cyberpredat\w*)\b",
    ),
    _t(
        ADULT,
        _ADULT_SUBJECT
        + r".{0,60}?\b"
        + _CONTACT_VERB
        + r"\b.{0,40}?\b(?:"
        + _TARGET
        + r"|"
        + _MEDIA
        + r"|"
        + _MEETING_ALONE
        + r")\b",
    ),
    _t(
        ADULT,
        _ADULT_SUBJECT
        + r".{0,60}?\b"
        + _WANT_VERB
        + r"\b.{0,40}?\b(?:"
        + _MEDIA
        + r"|"
        + _MEETING_ALONE
        + r")\b",
    ),
    _t(
        ADULT,
        _ADULT_SUBJECT + r".{0,40}?\b(?:lui|leur|la|le|l|les) " + _AUX + _CONTACT_VERB + r"\b",
    ),
    _t(
        ADULT,
        _ADULT_SUBJECT
        + r".{0,40}?\b(?:lui|leur|la|l|les) "
        + _AUX
        + _ARRANGE_VERB
        + r"\b.{0,20}?\b(?:rendez vous|rencontre|date)\b",
    ),
    _t(
        ADULT,
        _ADULT_SUBJECT
        + r".{0,60}?\b"
        + _ARRANGE_VERB
        + r"\b.{0,20}?\b(?:meet\w*|date|rendez vous|rencontre)\b.{0,10}?\b(?:with|avec) "
        + _TARGET_NAMED,
    ),
    _t(
        ADULT,
        _STAFF_SUBJECT
        + r" ?"
        + _AUX
        + r"(?:lui |leur |la |l |les )?"
        + _CONTACT_VERB
        + r" (?:(?:a|the|one of the|one of our|our|une|un|des) )?"
        + _TARGET
        + r"\b.{0,40}?\b(?:"
        + _MEDIA
        + r"|"
        + _MEETING_ALONE
        + r")\b",
    ),
    _t(
        ADULT,
        _STAFF_SUBJECT
        + r" ?"
        + _AUX
        + r"(?:lui|leur|la|l|les) "
        + _AUX
        + _CONTACT_VERB
        + r"\b.{0,40}?\b(?:"
        + _MEDIA
        + r"|"
        + _MEETING_ALONE
        + r")\b",
    ),
    _t(
        ADULT,
        _STAFF_SUBJECT + r" ?" + _AUX + r"(?:texting|messaging|dming|sexting|flirting with"
        r"|grooming|harassing|harcele|drague|texte) " + _TARGET + r"\b",
    ),
    # A missing student.
    _t(
        MISSING,
        r"\b(?:elle|il|ils|elles|eleves?|filles?|gars|garcon|jeune|victime|enfant|ado|fils"
        r"|ma fille|sa fille|petite?|adolescente?|etudiante?)"
        r"(?: est| a| sont| a ete| etait| est partie?| est rendue?)?"
        r" (?:disparue?s?|introuvables?|portee? disparue?s?|en fugue)\b",
    ),
    _t(MISSING, r"\b(?:fugue|fugu[ee]e?|fuguer|disparition|introuvables?)\b"),
    _t(MISSING, r"\b(?:la|le|les|l) (?:trouv|retrouv)\w* (?:plus|pu|nulle part|nowhere)"),
    _t(
        MISSING,
        r"\b(?:on|je|j|nous|ils|elles|personne) (?:ne |n )?(?:la|le|les|l) (?:trouv|retrouv)\w*"
        r" pas\b(?! (?:la|le|les|l|sa|son|ses) (?:photo|image|video|cell|telephone|fichier"
        r"|message|trousse|sac))",
        negatable=False,
    ),
    _t(
        MISSING,
        r"\b(?:sai[st]|savons|savent|sachant) (?:pas |plus |pu )?(?:ou|o) (?:elle|il"
        r"|ils|elles) (?:est|sont|se trouve|est rendue?)",
        negatable=False,
    ),
    _t(
        MISSING,
        r"\b(?:she|he|they|student|girl|boy|kid|child|teen|victim|daughter|son)"
        r"(?: s| is| has been| has gone| went| was| are| have been| is now| is still| s now)?"
        r" (?:missing|gone missing|nowhere to be found|unaccounted for)\b"
        # "he's missing practice", "she's missing class": missing something, not missing.
        r"(?! (?:a|an|the|his|her|their|my|our|some|any|out|practice|class|classes|school"
        r"|lunch|recess|homework|work|the bus|his bus|her bus|games?|courses?|cours)\b)",
    ),
    _t(
        MISSING,
        # the subject a few words ahead: "the boy in the video has been missing since lunch"
        r"\b(?:she|he|they|student|girl|boy|kid|child|teen|victim|daughter|son)\b"
        r"(?: \w+){0,4}? (?:has|have|s) been missing\b"
        r"(?! (?:a|an|the|his|her|their|my|our|some|any|out|practice|class|classes|school"
        r"|lunch|recess|homework|work|the bus|his bus|her bus|games?|courses?|cours)\b)",
    ),
    _t(MISSING, r"\bmissing (?:student|girl|boy|kid|child|teen)"),
    _t(MISSING, r"\b(?:ran|run|runs|running) (?:away|off)\b|\brunaway\b|\bdisappeared\b"),
    _t(
        MISSING,
        # "if they can't reach him" is a worry, not a fact
        r"(?<!\bif )(?<!\bif they )(?<!\bif we )(?<!\bif i )(?<!\bif you )(?<!\bif she )"
        r"(?<!\bif he )\b(?:can not|cannot|could not|can t|unable to) (?:find|locate|reach)"
        r" (?:her|him|them|the student|the kid|the girl|the boy)\b",
    ),
    _t(
        MISSING,
        r"\b(?:nobody|no one|none of us|none of (?:her|his|their) (?:friends|parents|family))"
        r" (?:can|could|has been able to|have been able to|managed to) (?:find|locate"
        r"|reach) (?:her|him|them|the student|the kid|the girl|the boy)\b",
        negatable=False,
    ),
    _t(
        MISSING,
        r"\bpersonne (?:ne |n )?(?:la|le|les|l)(?: a| ont)? (?:trouv|retrouv|rejoin)\w*\b"
        r"(?! (?:la|le|les|l|sa|son|ses) (?:photo|image|video|cell|telephone|fichier))",
        negatable=False,
    ),
    _t(
        MISSING,
        r"\b(?:nobody|no one|do not|does not|we do not|idk|dunno|not sure|no idea)"
        r" (?:knows? )?where"
        r" (?:she|he|they) (?:is|are|went|s)",
        negatable=False,
    ),
    _t(
        MISSING,
        r"\b(?:partie?s?|parti|sauvee?s?|enfuie?s?|sortie?s?) (?:de l ecole )?sans"
        r" (?:permission|avertir|le dire|rien dire|autorisation)|\bs est (?:sauvee?|enfuie?)\b"
        r"|\bleft (?:the )?school without",
    ),
    # Not seen since: "hasn't been seen since 2nd period", "personne l'a vue depuis le dîner".
    _t(
        MISSING,
        r"\b(?:she|he|they|student|girl|boy|kid|child|teen|victim|daughter|son)\b"
        r"(?: \w+){0,4}? (?:has not|have not|had not|not) been seen (?:since|for)\b"
        r"|\b(?:nobody|no one|none of us)(?: s| has| have)? (?:seen|heard from) (?:her|him|them)"
        r" (?:since|for|in)\b"
        r"|\bpersonne (?:ne |n )?(?:l|la|le|les) (?:a |ont )?(?:vue?s?|revue?s?) depuis\b"
        r"|\b(?:ca fait|depuis) (?:\w+ ){0,2}?(?:\d+ ?)?(?:minutes?|min|heures?|hres?|h)"
        r" (?:que )?personne"
        r" (?:ne |n )?(?:l|la|le|les) (?:a |ont )?(?:vue?s?|revue?s?)\b"
        r"|\b(?:l|la|le|les) (?:a|ont) (?:pas|plus|pu|jamais) (?:vue?s?|revue?s?) depuis\b",
        negatable=False,
    ),
    # Not home since last night: "est pas rentrée depuis hier", "didn't come home last night".
    _t(
        MISSING,
        r"\b(?:pas|jamais|toujours pas|pu|plus) (?:rentree?s?|revenue?s?|retournee?s?)"
        r"(?: (?:a la maison|chez (?:elle|lui|eux|nous|ses parents)))?"
        r" (?:depuis|de la nuit|cette nuit|hier|apres (?:le diner|la recre|le cours|l ecole)"
        r"|du diner|de la recre)\b"
        r"|\b(?:has not|have not|did not|never|has never) (?:come|came|gone|been|made it"
        r"|returned|get|got|gotten) (?:back )?home (?:since|last night|yesterday|all night"
        r"|overnight|for lunch|at lunch|at noon|after school)\b"
        r"|\b(?:did not|never|has not|have not) (?:come|came) back (?:after|from)"
        r" (?:lunch|recess|the break|break|gym|the washroom|the bathroom)\b"
        r"|\b(?:parents|mom|mother|dad|father|family|friends)(?: \w+)? (?:have not|has not"
        r"|had not) (?:seen|heard from) (?:her|him|them)\b",
        negatable=False,
    ),
    # Immediate danger, said as such.
    # "they asked if anyone was in danger, I said no": the dispatcher's question, answered.
    _t(
        DANGER,
        r"\b(?:en|in) danger\b|\bdanger (?:immediat|imminent)|\bimmediate danger",
        answerable=True,
    ),
    _t(DANGER, r"\b(?:pas|plus|pu) en securite\b|\bnot safe\b|\bunsafe\b", negatable=False),
    # A student bleeding now ("ça saigne encore"); "elle saigne plus" is over.
    _t(
        DANGER,
        r"\b(?:elle|il|ca|ils|elles|poignets?|bras) saign(?:e|ent)\b(?! (?:pas|plus|pu)\b)"
        r"|\b(?:is|s|are|re|still|keeps|kept|started|start) bleeding\b"
        r"|\bbleeding (?:a lot|heavily|badly|everywhere)\b",
    ),
)

# Strong words matched with one typo (insertion, deletion, substitution, transposition).
_FUZZY_WORDS: Final[dict[str, str]] = {
    **dict.fromkeys(
        _words(
            "suicide suicider suicidaire suicidaires suicidal suicidee suicidera suicidait"
            " scarifie scarifiee scarifier scarification automutilation automutile"
            " automutilee selfharm"
        ),
        SUICIDE,
    ),
    **dict.fromkeys(
        _words(
            "chantage sextorsion sextortion extorsion extortion extorque extorquer blackmail"
            " blackmailing blackmailed blackmails sextorted sextorting sextorque sextorquee"
        ),
        SEXTORTION,
    ),
    **dict.fromkeys(_words("couteau couteaux pistolet pistolets weapon weapons firearm"), WEAPON),
    **dict.fromkeys(_words("pedophile predateur predator"), ADULT),
}


def _deletions(word: str) -> set[str]:
    """The word and every string one deletion away from it."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


_FUZZY_INDEX: Final[dict[str, str]] = {
    variant: category for word, category in _FUZZY_WORDS.items() for variant in _deletions(word)
}


@dataclass(frozen=True, slots=True)
class SafetyHit:
    """Why the safety net fired: the category and the words that triggered it."""

    category: str
    phrase: str


class SafetyNet:
    """Deterministic detector of messages that need the emergency answer."""

    def check(self, text: str) -> SafetyHit | None:
        """Return the first trigger that fires on this message, or None."""
        folded = fold(text)
        for trigger in _TRIGGERS:
            for match in trigger.pattern.finditer(folded):
                if trigger.negatable and _negated(folded, match.start()):
                    continue
                if trigger.answerable and _asked_and_answered_no(folded, match):
                    continue
                return SafetyHit(trigger.category, match.group(0).strip())
        return self._fuzzy(folded)

    def _fuzzy(self, folded: str) -> SafetyHit | None:
        """Strong words with at most one typo ("sucidaire", "chantag")."""
        words = _WORD.findall(folded)
        for index, word in enumerate(words):
            if len(word) < 5:
                continue
            for variant in _deletions(word):
                category = _FUZZY_INDEX.get(variant)
                if category is None or len(variant) < 5:
                    continue
                start = folded.find(word)
                if _negated_words(words[:index]) and not _doubted(folded[:start]):
                    break
                return SafetyHit(category, word)
        return None


def _asked_and_answered_no(folded: str, match: re.Match[str]) -> bool:
    """Whether "in danger" is a question the user reports and says they answered no to:
    "911 done, they asked if anyone was in danger, I said no"."""
    return bool(
        _ASKED.search(folded, max(0, match.start() - 60), match.start())
        and _ANSWERED_NO.search(folded, match.end())
    )


def _negated(folded: str, start: int) -> bool:
    """Whether the words just before a trigger negate it (and no doubt is voiced)."""
    before = folded[:start]
    return _negated_words(_WORD.findall(before)) and not _doubted(before)


def _negated_words(words: list[str], window: int = _NEGATION_WINDOW) -> bool:
    """Whether one of the last few words (``window`` of them) is a negation."""
    last = words[-window:] if window else []
    for position, word in enumerate(last):
        if word not in _NEGATORS:
            continue
        previous = last[position - 1] if position else ""
        if word == "personne" and previous in _PERSON_DETERMINERS:
            continue
        return True
    return False


def _doubted(before: str) -> bool:
    """Whether the sentence so far voices a doubt, in which case a negation does not count.

    "même si" and "even if" concede rather than doubt: "j'appelle le 911 même si personne est
    en danger?" says no one is in danger. So does an "if" whose own clause is negated: "faut-il
    appeler le 911 si personne n'est en danger?" sets a condition, where "je sais pas si elle
    est en danger" ("sais") still doubts.
    """
    words = _WORD.findall(before)
    return any(
        word in _DOUBTS
        and not (
            word in _CONCESSIVE
            and (
                (index and words[index - 1] in _EVEN)
                or _negated_words(words[index + 1 :], window=len(words))
            )
        )
        for index, word in enumerate(words)
    )
