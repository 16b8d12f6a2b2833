"""The safety net fires on immediate danger in FR/EN, with typos, and not on protocol talk."""

from __future__ import annotations

import pytest

from nlu.safety import (
    ADULT,
    DANGER,
    MISSING,
    SEXTORTION,
    SUICIDE,
    VIOLENCE,
    WEAPON,
    SafetyNet,
)

NET = SafetyNet()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("elle parle de se faire du mal", SUICIDE),
        ("il a dit qu'il voulait mourir", SUICIDE),
        ("she says she wants to die", SUICIDE),
        ("he's talking about killing himself", SUICIDE),
        ("elle a des idées noires depuis hier", SUICIDE),
        ("il dit que ça vaut pu la peine de vivre", SUICIDE),
        ("she's been cutting herself", SUICIDE),
        ("she keeps saying everyone would be better off without her", SUICIDE),
        ("il dit que sa famille serait mieux sans lui", SUICIDE),
        ("elle souhaite être morte", SUICIDE),
        ("he says he wants to not be here anymore", SUICIDE),
        ("il menace de le tuer après l'école", VIOLENCE),
        ("il menace de venir la battre à la sortie", VIOLENCE),
        ("son ex va venir le planter", VIOLENCE),
        ("the boyfriend threatened to beat him up", VIOLENCE),
        ("un élève a un couteau dans son casier", WEAPON),
        ("someone said he'd bring a gun", WEAPON),
        ("he'll post it unless she pays", SEXTORTION),
        ("un gars la fait chanter avec la photo", SEXTORTION),
        ("il exige 300$ sinon il publie tout", SEXTORTION),
        ("someone is blackmailing her right now", SEXTORTION),
        ("somebody online is asking the boy for $500 or they leak his video", SEXTORTION),
        ("il demande à la fille 200$ pour pas publier", SEXTORTION),
        ("do it or he sends them to her parents", SEXTORTION),
        ("il lui écrit paie 300$ ou ses photos vont sur TikTok", SEXTORTION),
        ("send $200 or your pics get sent to everyone", SEXTORTION),
        ("she cut her wrists in the bathroom", SUICIDE),
        ("he cuts his arms at night", SUICIDE),
        ("elle s'est grafignée les poignets jusqu'au sang", SUICIDE),
        ("il saigne beaucoup du bras", DANGER),
        ("she's still bleeding", DANGER),
        ("il dit qu'il a plus de raison de vivre", SUICIDE),
        ("we can't reach him since this morning", MISSING),
        ("un homme de 35 ans lui demande des photos", ADULT),
        ("a grown man keeps texting her for pics", ADULT),
        ("un prof lui a demandé des nudes", ADULT),
        ("un homme de 26 ans qui lui donne rendez-vous ce soir", ADULT),
        ("un adulte lui a fixé un rendez-vous au parc", ADULT),
        ("an adult set up a meeting with the girl after school", ADULT),
        ("a 30 year old man invited her to his place tonight", ADULT),
        ("un homme veut une rencontre avec la fille", ADULT),
        ("she has no reason to live", SUICIDE),
        ("she says she has no more reason to live", SUICIDE),
        ("she has pills in her locker and doesn't see the point anymore", SUICIDE),
        ("she wants to finish with her life", SUICIDE),
        ("il sest coupé les bras ds les toilettes", SUICIDE),
        ("sa fille est pas rentrée depuis hier pis répond plus", MISSING),
        ("he didn't come home last night", MISSING),
        ("« tu m'envoies 200$ ce soir ou je poste tout »", SEXTORTION),
        ("send me $300 by tonight or I post everything", SEXTORTION),
        ("« 100$ ce soir ou je les poste »", SEXTORTION),
        ("he didn't get home last night", MISSING),
        ("he menaced to kill the boy who shared the picture", VIOLENCE),
        ("he texted her 'pay me or your parents get the pics'", SEXTORTION),
        ("paie-moi ou ta mère va voir toutes tes photos", SEXTORTION),
        ("she has pills at home and she's gonna take them all tonight", SUICIDE),
        ("elle veut avaler toutes ses pilules", SUICIDE),
        ("the student is missing since lunch", MISSING),
        ("elle a fugué ce matin", MISSING),
        ("on sait pas où elle est rendue", MISSING),
        ("elle est sortie en courant pis on la trouve pas", MISSING),
        ("the boy in the video has been missing since lunch", MISSING),
        ("she's been missing since this morning", MISSING),
        ("she left class an hour ago and nobody can find her", MISSING),
        ("no one has been able to reach him since noon", MISSING),
        ("elle est partie du cours pis personne la trouve", MISSING),
        ("personne ne l'a retrouvée depuis la récré", MISSING),
        ("the boy from the video hasn't been seen since noon", MISSING),
        ("she has not been seen for two hours, her phone is off", MISSING),
        ("nobody's seen him since lunch", MISSING),
        ("personne l'a vue depuis le dîner", MISSING),
        ("ses parents l'ont pas vue depuis hier soir", MISSING),
        ("la petite a disparu après le cours de math", MISSING),
        ("cet élève est en danger", DANGER),
        ("un adulte texte une de mes élèves depuis des semaines", ADULT),
        ("a man in his thirties keeps messaging one of our students", ADULT),
        ("y dit qu'y publie toute si a y envoie pas 100$", SEXTORTION),
        ("il va tout montrer si elle lui donne pas d'argent", SEXTORTION),
        ("elle est pas en sécurité chez elle", DANGER),
    ],
)
def test_fires_on_danger(text: str, category: str) -> None:
    hit = NET.check(text)
    assert hit is not None, text
    assert hit.category == category


@pytest.mark.parametrize(
    "text",
    [
        "ELLE VEUT SE SUICIDER",
        "elle veut se suicider",
        "elle veut se suicidé",
        "il est sucidaire",
        "she is suicidall",
        "elle est sûrement suicidaaaaire",
        "il se fait faire du chantag",
        "il la fait chanterrrr",
        "he's blackmaling her",
        "Il A Un CoUtEaU",
        "il a un coteau",
        "elle veut mourrir",
        "he doesn’t want to live anymore",
    ],
)
def test_accents_case_stretching_and_typos(text: str) -> None:
    assert NET.check(text) is not None, text


@pytest.mark.parametrize(
    "text",
    [
        "the victim is fine",
        "no one is in danger",
        "nobody's in danger right now",
        "personne est en danger",
        "personne n'est en danger",
        "j'appelle le 911 même si personne est en danger?",
        "do I call 911 even if no one is in danger",
        "faut-il appeler le 911 si personne n'est en danger?",
        "do we still call 911 if nobody is in danger right now?",
        "si elle est pas en danger, on attend la patrouille?",
        "elle est pas en danger",
        "il n'y a aucun danger immédiat",
        "pas d'arme, pas de menace",
        "no weapons involved",
        "he doesn't have a knife",
        "she is not suicidal",
        "les parents menacent de porter plainte",
        "the parents are threatening to complain",
        "am I missing a step?",
        "la photo a disparu de son snap",
        "on la trouve pas la photo dans son cell",
        "je trouve pas le formulaire pour les parents",
        "the team is better off without him on the bench",
        "can I tell the coach why he's missing practice tonight",
        "the officer won't be here for a while, what do I do",
        "ask the principal or they will send someone",
        "the parents ask for a refund of the trip",
        "she's missing class for the meeting with the officer",
        "elle est en larmes",
        "un adulte de l'école reste avec elle",
        "an adult should stay with her, she wants to go home",
        "a teacher asked me to send him the pic",
        "le prof veut voir la photo",
        "un gars de sec 5 a envoyé une nude à sa blonde",
        "ça fait 20 ans que je travaille ici",
        "random question about the kit",
        "j'ai appelé le 911",
        "je peux envoyer la photo à la direction?",
        "la mère veut ravoir le cellulaire",
        "what do I do with the phones?",
        "elle pleure beaucoup, comment l'aider?",
        "will he get a criminal record?",
        "le policier est parti avec la trousse",
        "elle saigne plus, l'infirmière l'a soignée",
        "she cut her arm on the locker door",
        "he has been missing a lot of classes since the rumour",
        "nobody can find the form for the parents",
        "personne trouve la trousse",
        "personne trouve la photo dans son cell",
        "should the school pay for the taxi or the parents",
        "can I keep the phone or the pics go with the kit?",
        "est-ce que l'école paie le taxi ou ses parents vont venir",
        "his mom will panic if she can't reach him tonight, can he keep his phone",
        "le policier va venir la rencontrer cet après-midi",
        "un homme a appelé pour demander une rencontre avec la direction",
        "a man called asking to meet with us tomorrow",
        "the father, a 45 year old man, wants a meeting with the principal",
        "there is no point calling them anymore",
        "I don't see the point of the form",
        "the school pays the $50 or I pay?",
        "I pay the $20 for the taxi or I send the form to the board?",
        "c'est 20$ pour le taxi ou on envoie l'autobus",
        "there's no reason to go on with the meeting",
        "she takes her pills every morning at the nurse's office",
        "the parents will pay or the school will get the bill",
        "she has to take all her meds with food",
        "elle est pas encore rentrée de son cours",
        "jai appelé le 911",
        "the photo has not been seen since the account was closed",
        "I have not seen the image since, I never opened it",
        "on l'a vue depuis, elle va mieux",
        "la photo a disparu de la story",
    ],
)
def test_quiet_on_protocol_talk_and_negations(text: str) -> None:
    assert NET.check(text) is None, NET.check(text)


@pytest.mark.parametrize(
    "text",
    [
        "je sais pas si elle est en danger",
        "I'm not sure if he has a knife",
        "je suis pas certaine qu'elle est en sécurité, elle est pas en danger?",
        "une personne est en danger",
        "je me demande si elle est en danger",
        "I don't know if someone is in danger",
    ],
)
def test_doubt_keeps_the_net_firing(text: str) -> None:
    assert NET.check(text) is not None, text


def test_hit_names_the_words() -> None:
    hit = NET.check("Il veut SE TUER")
    assert hit is not None
    assert hit.phrase == "se tuer"
