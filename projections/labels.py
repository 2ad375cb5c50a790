"""What the tracker says, in English and French, for each code in the views."""

from __future__ import annotations

Lang = str  # one of domain.catalogue.LANGUAGES; text() answers any other in English

TEXTS: dict[str, dict[Lang, str]] = {
    # overall status
    "status.received": {
        "en": "Received (completeness check)",
        "fr": "Reçue (vérification de l'intégralité)",
    },
    "status.in_progress": {"en": "In progress", "fr": "En cours"},
    "status.closed": {"en": "Closed", "fr": "Fermée"},
    "outcome.approved": {"en": "Approved", "fr": "Approuvée"},
    "outcome.refused": {"en": "Refused", "fr": "Refusée"},
    "outcome.withdrawn": {"en": "Withdrawn", "fr": "Retirée"},
    # activities
    "activity.sponsor_eligibility": {
        "en": "Sponsor eligibility",
        "fr": "Admissibilité du répondant",
    },
    "activity.eligibility": {"en": "Eligibility", "fr": "Admissibilité"},
    "activity.medical": {"en": "Medical exam", "fr": "Examen médical"},
    "activity.biometrics": {"en": "Biometrics", "fr": "Données biométriques"},
    "activity.background_check": {
        "en": "Background verification",
        "fr": "Vérification des antécédents",
    },
    "activity_status.not_started": {"en": "Not started", "fr": "Pas commencé"},
    "activity_status.in_progress": {"en": "In progress", "fr": "En cours"},
    "activity_status.action_required": {
        "en": "Waiting on you (action required)",
        "fr": "En attente de votre part (action requise)",
    },
    "activity_status.completed": {"en": "Completed", "fr": "Terminé"},
    "activity_status.not_required": {"en": "Not required", "fr": "Non requis"},
    # next steps
    "step.biometrics": {"en": "Give your biometrics", "fr": "Fournissez vos données biométriques"},
    "step.medical": {"en": "Get your medical exam", "fr": "Passez votre examen médical"},
    "step.documents": {
        "en": "Send the requested document: {document}",
        "fr": "Envoyez le document demandé : {document}",
    },
    "step.passport": {"en": "Send your passport", "fr": "Envoyez votre passeport"},
    # headings
    "label.application": {"en": "Application", "fr": "Demande"},
    "label.status": {"en": "Status", "fr": "État"},
    "label.received_on": {"en": "Received on", "fr": "Reçue le"},
    "label.last_updated": {"en": "Last updated", "fr": "Dernière mise à jour"},
    "label.days_elapsed": {"en": "Days since received", "fr": "Jours depuis la réception"},
    "label.service_standard": {"en": "Service standard", "fr": "Norme de service"},
    "label.days": {"en": "days", "fr": "jours"},
    "label.activities": {"en": "Activities", "fr": "Activités"},
    "label.next_steps": {"en": "Your next steps", "fr": "Vos prochaines étapes"},
    "label.none": {"en": "Nothing for now", "fr": "Rien pour le moment"},
    "label.due": {"en": "due", "fr": "d'ici le"},
    "label.estimate": {"en": "Estimate", "fr": "Estimation"},
    "label.history": {"en": "History", "fr": "Historique"},
    "label.contact": {
        "en": "Questions? Use the IRCC web form: https://www.canada.ca/en/immigration-refugees-citizenship/corporate/contact-ircc/web-form.html",
        "fr": "Des questions? Utilisez le formulaire Web d'IRCC : https://www.canada.ca/fr/immigration-refugies-citoyennete/organisation/contactez-ircc/formulaire-web.html",
    },
}


def text(key: str, lang: Lang, **values: str) -> str:
    entry = TEXTS[key]
    return entry.get(lang, entry["en"]).format(**values)
