"""The dashboard's words in French and English, one key per text, side by side."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("fr", "en")

TEXTS: Mapping[str, Mapping[str, str]] = {
    # ---- frame
    "app.title": {"fr": "SEXTO — tableau de bord", "en": "SEXTO — dashboard"},
    "nav.incidents": {"fr": "Incidents", "en": "Incidents"},
    "nav.statistics": {"fr": "Statistiques", "en": "Statistics"},
    "nav.admin": {"fr": "Administration", "en": "Administration"},
    "nav.audit": {"fr": "Journal d'audit", "en": "Audit log"},
    "nav.drill": {"fr": "Simulateur d'exercice", "en": "Drill simulator"},
    "nav.sign_out": {"fr": "Se déconnecter", "en": "Sign out"},
    "nav.language": {"fr": "English", "en": "Français"},
    "nav.signed_in_as": {"fr": "Connecté : {name} ({role})", "en": "Signed in: {name} ({role})"},
    "role.professional": {"fr": "intervenant·e", "en": "professional"},
    "role.officer": {"fr": "agent·e sociocommunautaire", "en": "community relations officer"},
    "role.coordinator": {"fr": "coordonnateur·trice", "en": "coordinator"},
    "role.admin": {"fr": "administrateur·trice", "en": "administrator"},
    "footer.privacy": {
        "fr": "Aucune image, aucun nom d'élève. Chaque consultation est journalisée.",
        "en": "No images, no student names. Every view is logged.",
    },
    # ---- sign-in
    "signin.title": {"fr": "Connexion", "en": "Sign in"},
    "signin.how": {
        "fr": "Pour vous connecter, envoyez /dashboard au bot SEXTO dans Telegram : il vous "
        "envoie un lien à usage unique, valide 10 minutes.",
        "en": "To sign in, send /dashboard to the SEXTO bot in Telegram: it sends you a "
        "single-use link, valid for 10 minutes.",
    },
    "signin.confirm": {
        "fr": "Vous allez ouvrir une session sur le tableau de bord SEXTO.",
        "en": "You are about to sign in to the SEXTO dashboard.",
    },
    "signin.button": {"fr": "Se connecter", "en": "Sign in"},
    "signin.refused": {"fr": "Connexion refusée", "en": "Sign-in refused"},
    "signin.unknown": {
        "fr": "Ce lien de connexion n'est pas valide.",
        "en": "This sign-in link is not valid.",
    },
    "signin.used": {
        "fr": "Ce lien a déjà servi. Demandez-en un nouveau avec /dashboard.",
        "en": "This link was already used. Ask for a new one with /dashboard.",
    },
    "signin.expired": {
        "fr": "Ce lien a expiré. Demandez-en un nouveau avec /dashboard.",
        "en": "This link has expired. Ask for a new one with /dashboard.",
    },
    "signin.inactive": {
        "fr": "Votre accès a été désactivé.",
        "en": "Your access has been deactivated.",
    },
    "signin.not_allowed": {
        "fr": "Le tableau de bord est réservé aux agent·e·s et aux coordonnateur·trice·s.",
        "en": "The dashboard is for officers and coordinators only.",
    },
    "signed_out.title": {"fr": "Session terminée", "en": "Signed out"},
    "signed_out.text": {"fr": "Vous êtes déconnecté·e.", "en": "You are signed out."},
    # ---- errors
    "error.forbidden": {"fr": "Accès refusé", "en": "Access denied"},
    "error.forbidden_text": {
        "fr": "Votre rôle ne donne pas accès à cette page.",
        "en": "Your role does not give access to this page.",
    },
    "error.csrf": {
        "fr": "Le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et "
        "recommencez.",
        "en": "The form expired or did not come from this site. Reload the page and try again.",
    },
    "error.not_found": {"fr": "Introuvable", "en": "Not found"},
    "error.not_found_text": {
        "fr": "Cette page n'existe pas ou vous n'y avez pas accès.",
        "en": "This page does not exist or you do not have access to it.",
    },
    "error.bad_request": {"fr": "Requête invalide", "en": "Bad request"},
    "error.nul": {
        "fr": "Un champ contient un caractère nul (\\0), que SEXTO n'accepte pas : retirez-le, "
        "puis recommencez.",
        "en": "A field holds a NUL character (\\0), which SEXTO does not accept: remove it, "
        "then try again.",
    },
    # ---- incident list
    "incidents.title": {"fr": "Incidents", "en": "Incidents"},
    "incidents.count": {"fr": "{count} incident(s)", "en": "{count} incident(s)"},
    "incidents.none": {
        "fr": "Aucun incident ne correspond à ces critères.",
        "en": "No incident matches these criteria.",
    },
    "incidents.scope_all": {
        "fr": "Vous voyez les incidents de toutes les écoles.",
        "en": "You see the incidents of every school.",
    },
    "incidents.scope_schools": {
        "fr": "Vous voyez les incidents de vos écoles : {schools}.",
        "en": "You see the incidents of your schools: {schools}.",
    },
    "incidents.scope_none": {
        "fr": "Aucune école ne vous est assignée : aucun incident à afficher.",
        "en": "No school is assigned to you: no incident to show.",
    },
    "filter.school": {"fr": "École", "en": "School"},
    "filter.status": {"fr": "Statut", "en": "Status"},
    "filter.from": {"fr": "Du", "en": "From"},
    "filter.to": {"fr": "Au", "en": "To"},
    "filter.kind": {"fr": "Type", "en": "Kind"},
    "filter.sort": {"fr": "Tri", "en": "Sort"},
    "filter.any": {"fr": "Tous", "en": "Any"},
    "filter.apply": {"fr": "Filtrer", "en": "Filter"},
    "filter.reset": {"fr": "Réinitialiser", "en": "Reset"},
    "filter.ignored": {
        "fr": "Valeur non valide, filtre ignoré : {filters}.",
        "en": "Value not valid, filter ignored: {filters}.",
    },
    "filter.invalid": {
        "fr": "Valeur de filtre non valide : {filters}. Rien n'a été exporté.",
        "en": "Filter value not valid: {filters}. Nothing was exported.",
    },
    "kind.real": {"fr": "réel", "en": "real"},
    "kind.drill": {"fr": "exercice", "en": "drill"},
    "kind.all": {"fr": "réels et exercices", "en": "real and drills"},
    "sort.opened_desc": {"fr": "plus récents d'abord", "en": "newest first"},
    "sort.opened_asc": {"fr": "plus anciens d'abord", "en": "oldest first"},
    "sort.code": {"fr": "numéro", "en": "code"},
    "sort.school": {"fr": "école", "en": "school"},
    "sort.status": {"fr": "statut", "en": "status"},
    "page.previous": {"fr": "← Précédents", "en": "← Previous"},
    "page.next": {"fr": "Suivants →", "en": "Next →"},
    "page.of": {"fr": "Page {page} sur {pages}", "en": "Page {page} of {pages}"},
    "export.csv": {"fr": "Exporter en CSV", "en": "Export as CSV"},
    "column.code": {"fr": "Numéro", "en": "Code"},
    "column.school": {"fr": "École", "en": "School"},
    "column.status": {"fr": "Statut", "en": "Status"},
    "column.opened": {"fr": "Ouvert le", "en": "Opened"},
    "column.to_911": {"fr": "Délai 911", "en": "Time to 911"},
    "column.outcome": {"fr": "Décision", "en": "Outcome"},
    "column.time": {"fr": "Heure", "en": "Time"},
    "column.event": {"fr": "Événement", "en": "Event"},
    "column.actor": {"fr": "Par", "en": "By"},
    "column.detail": {"fr": "Détail", "en": "Detail"},
    "column.alert": {"fr": "Envoi", "en": "Message"},
    "column.recipient": {"fr": "Destinataire", "en": "Recipient"},
    "column.level": {"fr": "Niveau", "en": "Level"},
    "column.number": {"fr": "N°", "en": "No."},
    "column.created": {"fr": "Prévu", "en": "Queued"},
    "column.sent": {"fr": "Envoyé", "en": "Sent"},
    "column.acknowledged": {"fr": "Pris en charge", "en": "Acknowledged"},
    "column.name": {"fr": "Nom", "en": "Name"},
    "column.role": {"fr": "Rôle", "en": "Role"},
    "column.language": {"fr": "Langue", "en": "Language"},
    "column.schools": {"fr": "Écoles", "en": "Schools"},
    "column.active": {"fr": "Actif", "en": "Active"},
    "column.since": {"fr": "Depuis", "en": "Since"},
    "column.board": {"fr": "Centre de services / commission", "en": "Board"},
    "column.station": {"fr": "Poste de quartier", "en": "Station"},
    "column.address": {"fr": "Adresse", "en": "Address"},
    "column.officer": {"fr": "Agent·e", "en": "Officer"},
    "column.backup": {"fr": "Relève", "en": "Backup"},
    "column.incidents": {"fr": "Incidents", "en": "Incidents"},
    "column.expires": {"fr": "Expire", "en": "Expires"},
    "column.state": {"fr": "État", "en": "State"},
    "column.who": {"fr": "Qui", "en": "Who"},
    "column.action": {"fr": "Action", "en": "Action"},
    "column.target": {"fr": "Objet", "en": "Target"},
    # ---- one incident
    "incident.back": {"fr": "← Tous les incidents", "en": "← All incidents"},
    "incident.print": {"fr": "Version imprimable", "en": "Printable report"},
    "incident.pdf": {"fr": "PDF pour le dossier de police", "en": "PDF for the police file"},
    "section.timeline": {"fr": "Chronologie", "en": "Timeline"},
    "section.transcript": {"fr": "Conversation", "en": "Conversation"},
    "section.alerts": {"fr": "Alertes", "en": "Alerts"},
    "section.reminders": {"fr": "Rappels envoyés", "en": "Reminders sent"},
    "transcript.none": {"fr": "Aucun message.", "en": "No message."},
    "transcript.professional": {"fr": "Intervenant·e", "en": "Professional"},
    "transcript.bot": {"fr": "Bot SEXTO", "en": "SEXTO bot"},
    "alerts.none": {"fr": "Aucune alerte.", "en": "No alert."},
    "reminders.none": {"fr": "Aucun rappel.", "en": "No reminder."},
    "alerts.acknowledged_by": {"fr": "{name}, {time}", "en": "{name}, {time}"},
    "field.school": {"fr": "École", "en": "School"},
    "field.status": {"fr": "Statut", "en": "Status"},
    "field.kind": {"fr": "Type", "en": "Kind"},
    "field.opened_by": {"fr": "Ouvert par", "en": "Opened by"},
    "field.opened_at": {"fr": "Ouvert le", "en": "Opened"},
    "field.police_called_at": {"fr": "911 confirmé le", "en": "911 confirmed"},
    "field.to_911": {"fr": "Délai avant le 911", "en": "Time to 911"},
    "field.event_number": {"fr": "N° d'événement 911", "en": "911 event number"},
    "field.devices": {"fr": "Cellulaires en sac", "en": "Phones bagged"},
    "field.kit_collected_at": {"fr": "Trousse remise le", "en": "Kit collected"},
    "field.outcome": {"fr": "Décision du DPCP", "en": "DPCP decision"},
    "field.meeting_held_at": {"fr": "Rencontre éducative", "en": "Educational meeting"},
    "field.victim_met_at": {"fr": "Rencontre avec la victime", "en": "Meeting with the victim"},
    "field.closed_at": {"fr": "Fermé le", "en": "Closed"},
    "field.cancel_reason": {"fr": "Motif d'annulation", "en": "Cancellation reason"},
    "field.retention": {"fr": "Conservation", "en": "Retention"},
    "retention.removed": {
        "fr": "texte retiré (durée de conservation)",
        "en": "text removed (retention)",
    },
    "retention.anonymised": {"fr": "anonymisé", "en": "anonymised"},
    "retention.transcript_on": {
        "fr": "conversation retirée le {time}",
        "en": "conversation removed {time}",
    },
    "retention.anonymised_on": {"fr": "anonymisé le {time}", "en": "anonymised {time}"},
    "report.title": {"fr": "Rapport d'incident", "en": "Incident report"},
    "report.printed": {"fr": "Imprimé le {time}", "en": "Printed {time}"},
    "report.print_hint": {
        "fr": "Utilisez la commande Imprimer de votre navigateur (Ctrl+P).",
        "en": "Use your browser's Print command (Ctrl+P).",
    },
    "chain.call_911": {"fr": "Rappel 911", "en": "911 reminder"},
    "chain.officer_alert": {"fr": "Alerte", "en": "Alert"},
    "chain.stalled": {"fr": "Relance", "en": "Nudge"},
    "reason.opened": {"fr": "ouverture", "en": "opened"},
    "reason.police_called": {"fr": "911 confirmé", "en": "911 confirmed"},
    "reason.call_911": {"fr": "911 non confirmé", "en": "911 not confirmed"},
    "delivery.pending": {"fr": "en cours", "en": "pending"},
    "delivery.delivered": {"fr": "envoyé", "en": "sent"},
    "delivery.failed": {"fr": "échec", "en": "failed"},
    "detail.code": {"fr": "numéro", "en": "code"},
    "detail.kind": {"fr": "type", "en": "kind"},
    "detail.intent": {"fr": "intention", "en": "intent"},
    "detail.step": {"fr": "étape", "en": "step"},
    "detail.choice": {"fr": "choix", "en": "choice"},
    "detail.status": {"fr": "statut", "en": "status"},
    "detail.to": {"fr": "à", "en": "to"},
    "detail.level": {"fr": "niveau", "en": "level"},
    "detail.number": {"fr": "n°", "en": "no."},
    "detail.reason": {"fr": "motif", "en": "reason"},
    "detail.error": {"fr": "erreur", "en": "error"},
    "detail.by": {"fr": "par", "en": "by"},
    "detail.outcome": {"fr": "décision", "en": "decision"},
    "event.incident_opened": {"fr": "Incident ouvert", "en": "Incident opened"},
    "event.step_done": {"fr": "Étape faite", "en": "Step done"},
    "event.status_changed": {"fr": "Statut changé", "en": "Status changed"},
    "event.incident_updated": {"fr": "Incident mis à jour", "en": "Incident updated"},
    "event.incident_cancelled": {"fr": "Incident annulé", "en": "Incident cancelled"},
    "event.message_in": {"fr": "Message reçu", "en": "Message in"},
    "event.message_out": {"fr": "Message du bot", "en": "Bot message"},
    "event.media_deleted": {"fr": "Fichier supprimé", "en": "File deleted"},
    "event.alert_sent": {"fr": "Alerte envoyée", "en": "Alert sent"},
    "event.alert_failed": {"fr": "Alerte en échec", "en": "Alert failed"},
    "event.alert_skipped": {"fr": "Alerte sautée", "en": "Alert skipped"},
    "event.alert_acknowledged": {"fr": "Alerte prise en charge", "en": "Alert acknowledged"},
    "event.alert_exhausted": {"fr": "Alerte sans réponse", "en": "Alert unanswered"},
    "event.reminder_sent": {"fr": "Rappel envoyé", "en": "Reminder sent"},
    "event.reminder_failed": {"fr": "Rappel en échec", "en": "Reminder failed"},
    "event.escalated": {"fr": "Escalade", "en": "Escalated"},
    "event.nudge_sent": {"fr": "Relance envoyée", "en": "Nudge sent"},
    "event.outcome_recorded": {"fr": "Décision notée", "en": "Outcome recorded"},
    "event.follow_up_recorded": {"fr": "Suivi noté", "en": "Follow-up recorded"},
    "event.member_enrolled": {"fr": "Membre inscrit", "en": "Member enrolled"},
    # ---- statistics
    "stats.title": {"fr": "Statistiques", "en": "Statistics"},
    "stats.incidents": {"fr": "Incidents", "en": "Incidents"},
    "stats.to_911": {
        "fr": "De l'ouverture à la confirmation du 911",
        "en": "From opening to 911 confirmation",
    },
    "stats.to_ack": {
        "fr": "Délai de prise en charge par l'agent·e",
        "en": "Time to officer acknowledgement",
    },
    "stats.median": {"fr": "médiane", "en": "median"},
    "stats.p90": {"fr": "90e centile", "en": "90th percentile"},
    "stats.measured": {"fr": "{count} mesure(s)", "en": "{count} measurement(s)"},
    "stats.no_data": {"fr": "Pas encore de données.", "en": "No data yet."},
    "stats.per_school": {"fr": "Incidents par école", "en": "Incidents per school"},
    "stats.per_month": {"fr": "Incidents par mois", "en": "Incidents per month"},
    "stats.outcomes": {"fr": "Décisions du DPCP", "en": "DPCP decisions"},
    "stats.delays_911": {
        "fr": "Répartition des délais avant le 911",
        "en": "Distribution of times to 911",
    },
    "outcome.impulsive": {"fr": "impulsif", "en": "impulsive"},
    "outcome.malicious": {"fr": "malveillant", "en": "malicious"},
    # ---- administration
    "admin.title": {"fr": "Administration", "en": "Administration"},
    "admin.schools": {"fr": "Écoles", "en": "Schools"},
    "admin.officers": {"fr": "Agent·e·s et relèves", "en": "Officers and backups"},
    "admin.members": {"fr": "Membres", "en": "Members"},
    "admin.codes": {"fr": "Codes d'inscription", "en": "Enrollment codes"},
    "admin.schools_note": {
        "fr": "Les écoles viennent de config.yml (sexto init les charge).",
        "en": "Schools come from config.yml (sexto init loads them).",
    },
    "admin.none": {"fr": "— aucun·e —", "en": "— none —"},
    "admin.save": {"fr": "Enregistrer", "en": "Save"},
    "admin.saved": {"fr": "Modification enregistrée.", "en": "Change saved."},
    "admin.refused": {"fr": "Modification refusée : {reason}", "en": "Change refused: {reason}"},
    "admin.deactivate": {"fr": "Désactiver", "en": "Deactivate"},
    "admin.reactivate": {"fr": "Réactiver", "en": "Reactivate"},
    "admin.yes": {"fr": "oui", "en": "yes"},
    "admin.no": {"fr": "non", "en": "no"},
    "admin.self": {
        "fr": "vous ne pouvez pas vous désactiver vous-même",
        "en": "you cannot deactivate yourself",
    },
    "admin.only_admins": {
        "fr": "seul·e un·e administrateur·trice peut modifier un·e administrateur·trice",
        "en": "only an administrator can change an administrator",
    },
    "codes.create": {"fr": "Créer un code", "en": "Create a code"},
    "codes.role": {"fr": "Rôle", "en": "Role"},
    "codes.school": {"fr": "École", "en": "School"},
    "codes.created": {
        "fr": "Code créé : {code}. Notez-le maintenant, il ne sera plus affiché. "
        "Valide jusqu'au {expires}.",
        "en": "Code created: {code}. Write it down now: it will not be shown again. "
        "Valid until {expires}.",
    },
    "codes.link": {"fr": "Lien Telegram : {link}", "en": "Telegram link: {link}"},
    "codes.needs_school": {
        "fr": "un·e intervenant·e a besoin d'une école",
        "en": "a professional needs a school",
    },
    "codes.revoke": {"fr": "Révoquer", "en": "Revoke"},
    "codes.valid": {"fr": "valide", "en": "valid"},
    "codes.used": {"fr": "utilisé par {name} le {time}", "en": "used by {name} on {time}"},
    "codes.revoked": {"fr": "révoqué le {time}", "en": "revoked {time}"},
    "codes.expired": {"fr": "expiré", "en": "expired"},
    "audit.title": {"fr": "Journal d'audit", "en": "Audit log"},
    "audit.note": {
        "fr": "Chaque connexion, consultation, exportation et modification, en ajout seulement.",
        "en": "Every sign-in, view, export and change; entries are only ever added.",
    },
    # ---- member data export
    "admin.export": {"fr": "Exporter les données (JSON)", "en": "Export data (JSON)"},
    # ---- confidentiality incident register (Law 25)
    "nav.register": {"fr": "Incidents de confidentialité", "en": "Confidentiality incidents"},
    "register.title": {
        "fr": "Registre des incidents de confidentialité",
        "en": "Confidentiality incident register",
    },
    "register.intro": {
        "fr": "La Loi 25 exige de consigner tout incident de confidentialité touchant un "
        "renseignement personnel, même sans risque de préjudice sérieux, et de remettre ce "
        "registre à la Commission d'accès à l'information sur demande.",
        "en": "Law 25 requires recording every confidentiality incident involving personal "
        "information, even without a risk of serious injury, and giving this register to the "
        "Commission d'accès à l'information on request.",
    },
    "register.new": {"fr": "Consigner un incident", "en": "Record an incident"},
    "register.none": {"fr": "Aucun incident consigné.", "en": "No incident recorded."},
    "register.count": {"fr": "{count} incident(s)", "en": "{count} incident(s)"},
    "register.export_csv": {"fr": "Exporter en CSV", "en": "Export as CSV"},
    "register.export_json": {"fr": "Exporter en JSON", "en": "Export as JSON"},
    "register.back": {"fr": "← Registre", "en": "← Register"},
    "register.entry": {
        "fr": "Incident de confidentialité n° {number}",
        "en": "Confidentiality incident no. {number}",
    },
    "register.edit": {"fr": "Modifier", "en": "Edit"},
    "register.editing": {
        "fr": "Modifier l'incident de confidentialité n° {number}",
        "en": "Edit confidentiality incident no. {number}",
    },
    "register.save": {"fr": "Enregistrer", "en": "Save"},
    "register.cancel": {"fr": "Annuler", "en": "Cancel"},
    "register.saved": {"fr": "Entrée enregistrée.", "en": "Entry saved."},
    "register.unchanged": {"fr": "Aucune modification.", "en": "Nothing changed."},
    "register.invalid": {
        "fr": "L'entrée n'a pas été enregistrée : corrigez les champs signalés.",
        "en": "The entry was not saved: correct the fields marked.",
    },
    "register.recorded": {
        "fr": "Consigné par {name} le {time}",
        "en": "Recorded by {name} on {time}",
    },
    "register.updated": {
        "fr": "Dernière modification par {name} le {time}",
        "en": "Last changed by {name} on {time}",
    },
    "register.notice_pending": {"fr": "avis à donner", "en": "notice pending"},
    "register.not_notified": {"fr": "non avisé", "en": "not notified"},
    "register.approximate": {"fr": "environ {count}", "en": "about {count}"},
    "register.section.what": {"fr": "L'incident", "en": "The incident"},
    "register.section.risk": {"fr": "Risque et avis", "en": "Risk and notices"},
    "register.field.description": {
        "fr": "Description des circonstances",
        "en": "What happened (circumstances)",
    },
    "register.field.personal_information": {
        "fr": "Renseignements personnels visés",
        "en": "Personal information concerned",
    },
    "register.hint.personal_information": {
        "fr": "Ou la raison pour laquelle il est impossible de les décrire.",
        "en": "Or why they cannot be described.",
    },
    "register.field.occurred_on": {
        "fr": "Survenu le (ou début de la période)",
        "en": "Occurred on (or start of the period)",
    },
    "register.field.occurred_until": {
        "fr": "Fin de la période (facultatif)",
        "en": "End of the period (optional)",
    },
    "register.field.discovered_on": {
        "fr": "Date de la prise de connaissance",
        "en": "Discovered on",
    },
    "register.field.people_count": {
        "fr": "Nombre de personnes visées",
        "en": "Number of people concerned",
    },
    "register.field.people_count_estimated": {
        "fr": "Nombre approximatif",
        "en": "Approximate number",
    },
    "register.field.risk_assessment": {
        "fr": "Évaluation du risque de préjudice sérieux",
        "en": "Assessment of the risk of serious injury",
    },
    "register.hint.risk_assessment": {
        "fr": "Sensibilité des renseignements, utilisations malveillantes possibles, "
        "conséquences appréhendées et leur probabilité.",
        "en": "Sensitivity of the information, possible misuse, anticipated consequences and "
        "their likelihood.",
    },
    "register.field.serious_injury_risk": {
        "fr": "Risque de préjudice sérieux",
        "en": "Risk of serious injury",
    },
    "register.field.commission_notified_on": {
        "fr": "Avis à la Commission d'accès à l'information le",
        "en": "Commission d'accès à l'information notified on",
    },
    "register.field.people_notified_on": {
        "fr": "Avis aux personnes concernées le",
        "en": "People concerned notified on",
    },
    "register.hint.notified_on": {
        "fr": "Laissez vide si l'avis n'a pas été donné.",
        "en": "Leave empty if no notice was given.",
    },
    "register.field.notification_details": {
        "fr": "Détails des avis (qui, comment, avis public, ou motif de ne pas aviser)",
        "en": "Notice details (who, how, public notice, or why no notice was given)",
    },
    "register.field.measures": {
        "fr": "Mesures prises pour diminuer les risques de préjudice",
        "en": "Measures taken to reduce the risk of injury",
    },
    "register.column.number": {"fr": "N°", "en": "No."},
    "register.column.discovered": {"fr": "Découvert le", "en": "Discovered"},
    "register.column.occurred": {"fr": "Survenu", "en": "Occurred"},
    "register.column.description": {"fr": "Circonstances", "en": "What happened"},
    "register.column.people": {"fr": "Personnes", "en": "People"},
    "register.column.serious": {"fr": "Préjudice sérieux", "en": "Serious injury"},
    "register.column.commission": {"fr": "Avis CAI", "en": "CAI notified"},
    "register.column.notified": {"fr": "Avis aux personnes", "en": "People notified"},
    "register.error.required": {
        "fr": "Ce champ est obligatoire.",
        "en": "This field is required.",
    },
    "register.error.date": {
        "fr": "Date invalide (AAAA-MM-JJ).",
        "en": "Not a valid date (YYYY-MM-DD).",
    },
    "register.error.future": {
        "fr": "Cette date est dans le futur.",
        "en": "This date is in the future.",
    },
    "register.error.after_discovery": {
        "fr": "L'incident ne peut pas être survenu après sa découverte.",
        "en": "The incident cannot have occurred after it was discovered.",
    },
    "register.error.period": {
        "fr": "La fin de la période précède son début.",
        "en": "The period ends before it starts.",
    },
    "register.error.before_discovery": {
        "fr": "Un avis ne peut pas précéder la découverte de l'incident.",
        "en": "A notice cannot come before the incident was discovered.",
    },
    "register.error.number": {
        "fr": "Entrez un nombre entier, zéro ou plus.",
        "en": "Enter a whole number, zero or more.",
    },
    "register.error.too_long": {
        "fr": "Texte trop long (5 000 caractères au plus).",
        "en": "Text too long (5,000 characters at most).",
    },
    # ---- drill simulator
    "drill.title": {"fr": "Simulateur d'exercice", "en": "Drill simulator"},
    "drill.intro": {
        "fr": "Jouez l'intervenant·e : même guide, mêmes boutons, mêmes textes que dans "
        "Telegram. Tout incident créé ici est un exercice.",
        "en": "Play the professional: the same guide, buttons and texts as in Telegram. "
        "Every incident made here is a drill.",
    },
    "drill.start": {"fr": "Commencer un exercice", "en": "Start a drill"},
    "drill.say": {"fr": "Écrire", "en": "Type"},
    "drill.send": {"fr": "Envoyer", "en": "Send"},
    "drill.you": {"fr": "Vous", "en": "You"},
    "drill.clock": {"fr": "Heure simulée : {time}", "en": "Simulated time: {time}"},
    "drill.ahead": {"fr": "(avance de {delta})", "en": "({delta} ahead)"},
    "drill.forward": {"fr": "Avancer de", "en": "Fast-forward"},
    "drill.minutes": {"fr": "{count} min", "en": "{count} min"},
    "drill.refresh": {"fr": "Actualiser", "en": "Refresh"},
    "drill.officers": {"fr": "Panneau des agent·e·s", "en": "Officers' panel"},
    "drill.officers_note": {
        "fr": "Ce que le bot enverrait aux autres (alertes, rappels), par destinataire.",
        "en": "What the bot would send to others (alerts, reminders), by recipient.",
    },
    "drill.no_alert": {"fr": "Aucune alerte pour l'instant.", "en": "No alert yet."},
    "drill.would_alert": {
        "fr": "Lors d'un incident réel à {school}, seraient alertés : {people}.",
        "en": "In a real incident at {school}, these would be alerted: {people}.",
    },
    "drill.nobody": {
        "fr": "personne (aucun·e agent·e ni coordonnateur·trice)",
        "en": "nobody (no officer or coordinator)",
    },
    "drill.copy_note": {
        "fr": "En exercice, l'alerte est envoyée à l'intervenant·e seulement (marquée EXERCICE).",
        "en": "In a drill, the alert goes to the professional only (marked DRILL).",
    },
    "drill.acknowledge_as": {
        "fr": "Prendre en charge en tant que {name}",
        "en": "Acknowledge as {name}",
    },
    "drill.edited": {"fr": "modifié", "en": "edited"},
    "drill.real_refused": {
        "fr": "Le simulateur ne fait que des exercices.",
        "en": "The simulator only runs drills.",
    },
    "drill.command.status": {"fr": "/status", "en": "/status"},
    "drill.command.help": {"fr": "/help", "en": "/help"},
    "drill.command.lang": {"fr": "/lang", "en": "/lang"},
    "drill.command.cancel": {"fr": "/cancel", "en": "/cancel"},
}


class Translator:
    """The dashboard's texts in one language; parameters are filled in, not escaped."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else LANGUAGES[0]

    def __call__(self, key: str, **params: object) -> str:
        """The text of a key (a missing key is a bug: KeyError)."""
        template = TEXTS[key][self.language]
        return template.format(**params) if params else template

    def get(self, key: str, default: str) -> str:
        """The text of a key, or a default when there is no such key."""
        return self(key) if key in TEXTS else default

    @property
    def other(self) -> str:
        """The other language (for the toggle)."""
        return "en" if self.language == "fr" else "fr"
