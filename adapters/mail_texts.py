"""The texts of account emails, in English and French (the file's preferred language)."""

from __future__ import annotations

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
