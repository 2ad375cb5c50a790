"""The texts of account emails, in English and French (the file's preferred language)."""

from __future__ import annotations

from typing import Any

from projections import labels

_SUBJECTS = {
    ("register", "en"): "Your verification code for the application status tracker",
    ("register", "fr"): "Votre code de vérification pour l'outil de suivi de l'état des demandes",
    ("reset", "en"): "Your password reset code for the application status tracker",
    ("reset", "fr"): (
        "Votre code de réinitialisation du mot de passe pour l'outil de suivi de l'état"
        " des demandes"
    ),
}
_BODIES = {
    ("register", "en"): (
        "Hello,\n\nYour verification code is: {code}\n\n"
        "Enter it with a password of your choice to create your account. The code is valid"
        " for {hours} hours and can be tried {attempts} times.\n\n"
        "If you did not ask for an account, ignore this message.\n"
    ),
    ("register", "fr"): (
        "Bonjour,\n\nVotre code de vérification est : {code}\n\n"
        "Entrez-le avec le mot de passe de votre choix pour créer votre compte. Le code est"
        " valide pendant {hours} heures et peut être essayé {attempts} fois.\n\n"
        "Si vous n'avez pas demandé de compte, ne tenez pas compte de ce message.\n"
    ),
    ("reset", "en"): (
        "Hello,\n\nYour password reset code is: {code}\n\n"
        "Enter it with your new password. The code is valid for {hours} hours and can be"
        " tried {attempts} times. Every open session will be signed out.\n\n"
        "If you did not ask to reset your password, ignore this message.\n"
    ),
    ("reset", "fr"): (
        "Bonjour,\n\nVotre code de réinitialisation du mot de passe est : {code}\n\n"
        "Entrez-le avec votre nouveau mot de passe. Le code est valide pendant {hours} heures"
        " et peut être essayé {attempts} fois. Toutes les sessions ouvertes seront fermées.\n\n"
        "Si vous n'avez pas demandé à réinitialiser votre mot de passe, ne tenez pas compte"
        " de ce message.\n"
    ),
}


def code_message(
    purpose: str, language: str, code: str, hours: int, attempts: int
) -> tuple[str, str]:
    """(subject, body) for a registration ("register") or password reset ("reset") code."""
    lang = "fr" if language == "fr" else "en"
    body = _BODIES[(purpose, lang)].format(code=code, hours=hours, attempts=attempts)
    return _SUBJECTS[(purpose, lang)], body


# ---------------------------------------------------------------- change notifications
# (docs/notifications.md). The subject says nothing of the file; the body holds what the
# reader's role sees in the tracker: the history lines (projections.timeline's texts),
# the overall status (projections.labels) and the link to the tracker page.

_CHANGE_SUBJECT = {
    "en": "Your application status tracker has an update",
    "fr": "Du nouveau dans l'outil de suivi de l'état des demandes",
}
_CHANGE_TEXTS = {
    "en": {
        "hello": "Hello,",
        "intro": "There is news about your application in the application status tracker.",
        "file": "Application {number}",
        "status": "Status: {status}",
        "updated": "Updated: {fields}",
        "link": "See it in the tracker: {url}",
        "footer": (
            "You get these messages because you have an account on the application status"
            " tracker. To stop them, turn notifications off in your account settings."
        ),
    },
    "fr": {
        "hello": "Bonjour,",
        "intro": (
            "Il y a du nouveau sur votre demande dans l'outil de suivi de l'état des demandes."
        ),
        "file": "Demande {number}",
        "status": "État : {status}",
        "updated": "Mis à jour : {fields}",
        "link": "Consultez-la dans l'outil de suivi : {url}",
        "footer": (
            "Vous recevez ces messages parce que vous avez un compte dans l'outil de suivi de"
            " l'état des demandes. Pour ne plus les recevoir, désactivez les avis dans les"
            " paramètres de votre compte."
        ),
    },
}
_FIELD_NAMES = {
    "status": ("status", "état"),
    "outcome": ("outcome", "résultat"),
    "acknowledged_on": ("acknowledgement of receipt", "accusé de réception"),
    "activities": ("activities", "activités"),
    "next_steps": ("next steps", "prochaines étapes"),
    "documents": ("documents", "documents"),
    "decided_on": ("decision date", "date de la décision"),
    "category": ("category", "catégorie"),
    "received_on": ("date received", "date de réception"),
}


def tracker_url(base_url: str, language: str, number: str) -> str:
    """The tracker page of a file: ``{base}/{lang}/applications/{number}``."""
    lang = "fr" if language == "fr" else "en"
    return f"{base_url.rstrip('/')}/{lang}/applications/{number}"


def change_message(
    language: str, files: list[tuple[str, list[dict[str, Any]]]], base_url: str
) -> tuple[str, str]:
    """(subject, body) of one person's grouped notification: ``files`` is each
    application number with its changes in order (projections.notify_changes)."""
    lang = "fr" if language == "fr" else "en"
    texts = _CHANGE_TEXTS[lang]
    lines = [texts["hello"], "", texts["intro"]]
    for number, changes in files:
        lines += ["", texts["file"].format(number=number)]
        status = changes[-1]["status"]
        shown = labels.text(f"status.{status['status']}", lang)
        if status.get("outcome"):
            shown += " (" + labels.text(f"outcome.{status['outcome']}", lang) + ")"
        lines.append(texts["status"].format(status=shown))
        for change in changes:
            line = change.get("history")
            if line is not None:
                lines.append(f"- {line[f'title_{lang}']}: {line[f'text_{lang}']}")
            else:
                index = 0 if lang == "en" else 1
                names = [_FIELD_NAMES.get(f, (f, f))[index] for f in change["fields"]]
                lines.append("- " + texts["updated"].format(fields=", ".join(names)))
        lines.append(texts["link"].format(url=tracker_url(base_url, lang, number)))
    lines += ["", texts["footer"], ""]
    return _CHANGE_SUBJECT[lang], "\n".join(lines)


_DISABLED_SUBJECT = {
    "en": "A webhook endpoint of yours was turned off",
    "fr": "Un de vos points de terminaison webhook a été désactivé",
}
_DISABLED_BODY = {
    "en": (
        "Hello,\n\nThe webhook endpoint {endpoint} on {host} failed every delivery for three"
        " days, so we turned it off. Its deliveries are kept: fix the receiver, then ask for"
        " them again (or register the endpoint again).\n"
    ),
    "fr": (
        "Bonjour,\n\nLe point de terminaison webhook {endpoint} sur {host} a échoué à chaque"
        " envoi pendant trois jours ; nous l'avons désactivé. Ses envois sont conservés :"
        " corrigez le récepteur, puis demandez-les de nouveau (ou enregistrez le point de"
        " terminaison de nouveau).\n"
    ),
}


def endpoint_disabled_message(language: str, endpoint_id: int, host: str) -> tuple[str, str]:
    lang = "fr" if language == "fr" else "en"
    return _DISABLED_SUBJECT[lang], _DISABLED_BODY[lang].format(endpoint=endpoint_id, host=host)
