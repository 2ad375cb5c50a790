"""What the web pages say, in English and French, and how they write dates and numbers.

The tracker's own words (statuses, activities, next steps, headings, the contact line)
come from projections.labels, the history's and the estimate's from their projections,
so the page and the API say the same thing; only the page's own chrome is here.
"""

from __future__ import annotations

from datetime import date, datetime

from projections import labels

LANGS = ("en", "fr")
OTHER = {"en": "fr", "fr": "en"}

TEXTS: dict[str, dict[str, str]] = {
    "site.name": {
        "en": "Application status tracker",
        "fr": "Outil de suivi de l'état de la demande",
    },
    "site.department": {
        "en": "Immigration, Refugees and Citizenship Canada",
        "fr": "Immigration, Réfugiés et Citoyenneté Canada",
    },
    "skip": {"en": "Skip to main content", "fr": "Passer au contenu principal"},
    "lang.switch": {"en": "Français", "fr": "English"},
    "lang.switch_name": {"en": "Voir cette page en français", "fr": "View this page in English"},
    "nav.label": {"en": "Your account", "fr": "Votre compte"},
    "nav.applications": {"en": "My applications", "fr": "Mes demandes"},
    "nav.settings": {"en": "Account settings", "fr": "Paramètres du compte"},
    "nav.sign_out": {"en": "Sign out", "fr": "Se déconnecter"},
    "footer.note": {
        "en": "This tracker shows the status of family sponsorship applications.",
        "fr": "Cet outil affiche l'état des demandes de parrainage familial.",
    },
    # forms
    "form.required": {"en": "required", "fr": "obligatoire"},
    "form.errors_title": {
        "en": "There is a problem with this form",
        "fr": "Ce formulaire comporte une erreur",
    },
    "form.errors_count": {
        "en": "Correct the following, then submit again:",
        "fr": "Corrigez ce qui suit, puis envoyez de nouveau :",
    },
    "form.error_prefix": {"en": "Error:", "fr": "Erreur :"},
    "field.login": {"en": "UCI or email address", "fr": "IUC ou adresse courriel"},
    "field.login_hint": {
        "en": "Applicants and sponsors: your unique client identifier (UCI), 8 or 10 digits."
        " Representatives: your email address.",
        "fr": "Demandeurs et répondants : votre identificateur unique de client (IUC), 8 ou 10"
        " chiffres. Représentants : votre adresse courriel.",
    },
    "field.password": {"en": "Password", "fr": "Mot de passe"},
    "field.new_password": {"en": "New password", "fr": "Nouveau mot de passe"},
    "field.new_password_hint": {
        "en": "At least 12 characters, hard to guess, without your UCI, email or family name."
        " A few unrelated words work well.",
        "fr": "Au moins 12 caractères, difficile à deviner, sans votre IUC, votre courriel ni"
        " votre nom de famille. Quelques mots sans lien entre eux conviennent bien.",
    },
    "field.code": {"en": "Verification code", "fr": "Code de vérification"},
    "field.code_hint": {
        "en": "The 8 digits we sent you by email.",
        "fr": "Les 8 chiffres que nous vous avons envoyés par courriel.",
    },
    "field.role": {"en": "I am", "fr": "Je suis"},
    "field.application_number": {"en": "Application number", "fr": "Numéro de demande"},
    "field.application_number_hint": {
        "en": "One letter and 9 digits, as on your acknowledgement of receipt, e.g. F123456789.",
        "fr": "Une lettre et 9 chiffres, comme sur votre accusé de réception, p. ex. F123456789.",
    },
    "field.family_name": {"en": "Family name", "fr": "Nom de famille"},
    "field.family_name_hint": {"en": "As on the application.", "fr": "Comme dans la demande."},
    "field.uci": {
        "en": "UCI (unique client identifier)",
        "fr": "IUC (identificateur unique de client)",
    },
    "field.uci_hint": {"en": "8 or 10 digits.", "fr": "8 ou 10 chiffres."},
    "field.date_of_birth": {"en": "Date of birth", "fr": "Date de naissance"},
    "field.date_of_birth_hint": {
        "en": "YYYY-MM-DD, e.g. 1990-04-23.",
        "fr": "AAAA-MM-JJ, p. ex. 1990-04-23.",
    },
    "field.email": {"en": "Email address", "fr": "Adresse courriel"},
    "field.membership_id": {
        "en": "Membership ID (optional)",
        "fr": "Numéro de membre (facultatif)",
    },
    "field.membership_id_hint": {
        "en": "Your regulatory body's membership number, if the application shows one.",
        "fr": "Votre numéro de membre de l'organisme de réglementation, s'il figure dans la"
        " demande.",
    },
    "fieldset.applicant": {
        "en": "Principal applicants and sponsors",
        "fr": "Demandeurs principaux et répondants",
    },
    "fieldset.representative": {"en": "Representatives", "fr": "Représentants"},
    "role.principal_applicant": {"en": "Principal applicant", "fr": "Demandeur principal"},
    "role.sponsor": {"en": "Sponsor", "fr": "Répondant"},
    "role.representative": {"en": "Authorized representative", "fr": "Représentant autorisé"},
    "role.i_principal_applicant": {
        "en": "The principal applicant",
        "fr": "Le demandeur principal",
    },
    "role.i_sponsor": {"en": "The sponsor", "fr": "Le répondant"},
    "role.i_representative": {
        "en": "An authorized representative",
        "fr": "Un représentant autorisé",
    },
    # errors
    "error.required": {"en": "Enter your {field}.", "fr": "Entrez votre {field}."},
    "error.invalid": {
        "en": "Enter a valid {field}.",
        "fr": "Le format n'est pas valide : {field}.",
    },
    "noun.login": {"en": "UCI or email address", "fr": "IUC ou adresse courriel"},
    "noun.password": {"en": "password", "fr": "mot de passe"},
    "noun.code": {"en": "8-digit code", "fr": "code à 8 chiffres"},
    "noun.application_number": {"en": "application number", "fr": "numéro de demande"},
    "noun.family_name": {"en": "family name", "fr": "nom de famille"},
    "noun.uci": {"en": "UCI (8 or 10 digits)", "fr": "IUC (8 ou 10 chiffres)"},
    "noun.date_of_birth": {
        "en": "date of birth (YYYY-MM-DD)",
        "fr": "date de naissance (AAAA-MM-JJ)",
    },
    "noun.email": {"en": "email address", "fr": "adresse courriel"},
    "noun.membership_id": {"en": "membership ID", "fr": "numéro de membre"},
    "error.choose_role": {"en": "Choose who you are.", "fr": "Indiquez qui vous êtes."},
    "error.credentials": {
        "en": "The UCI or email address, or the password, is not right.",
        "fr": "L'IUC ou l'adresse courriel, ou le mot de passe, n'est pas exact.",
    },
    "error.code": {
        "en": "The code is wrong, expired, already used or tried too many times."
        " Request a new one.",
        "fr": "Le code est erroné, expiré, déjà utilisé ou a été essayé trop de fois."
        " Demandez-en un nouveau.",
    },
    "error.weak_password": {
        "en": "Choose a stronger password: {reason}.",
        "fr": "Choisissez un mot de passe plus sûr : au moins 12 caractères dont 5 différents,"
        " difficile à deviner, sans votre IUC, votre courriel ni votre nom de famille.",
    },
    "error.short_password": {
        "en": "The password must have at least 12 characters.",
        "fr": "Le mot de passe doit compter au moins 12 caractères.",
    },
    "error.account_exists": {
        "en": "An account already uses this login. Sign in, or reset your password.",
        "fr": "Un compte utilise déjà cet identifiant. Connectez-vous ou réinitialisez votre"
        " mot de passe.",
    },
    "error.rate_limited": {
        "en": "Too many attempts. Wait {seconds} seconds, then try again.",
        "fr": "Trop de tentatives. Attendez {seconds} secondes, puis réessayez.",
    },
    "error.busy": {
        "en": "Too many requests are waiting. Try again in a minute.",
        "fr": "Trop de demandes sont en attente. Réessayez dans une minute.",
    },
    "error.unavailable": {
        "en": "The service is not available right now. Try again in a few minutes.",
        "fr": "Le service n'est pas disponible pour le moment. Réessayez dans quelques minutes.",
    },
    # sign in
    "signin.title": {"en": "Sign in", "fr": "Se connecter"},
    "signin.intro": {
        "en": "Sign in to see the status of your application.",
        "fr": "Connectez-vous pour voir l'état de votre demande.",
    },
    "signin.submit": {"en": "Sign in", "fr": "Se connecter"},
    "signin.no_account": {"en": "No account yet?", "fr": "Pas encore de compte?"},
    "signin.register": {"en": "Create an account", "fr": "Créer un compte"},
    "signin.forgot": {"en": "Forgot your password?", "fr": "Mot de passe oublié?"},
    "notice.created": {
        "en": "Your account is ready. Sign in with your new password.",
        "fr": "Votre compte est prêt. Connectez-vous avec votre nouveau mot de passe.",
    },
    "notice.reset": {
        "en": "Your password is changed and every session was signed out. Sign in with"
        " your new password.",
        "fr": "Votre mot de passe est changé et toutes les sessions ont été fermées."
        " Connectez-vous avec votre nouveau mot de passe.",
    },
    "notice.signed_out": {"en": "You are signed out.", "fr": "Vous êtes déconnecté."},
    "notice.expired": {
        "en": "Your session ended. Sign in again.",
        "fr": "Votre session a pris fin. Connectez-vous de nouveau.",
    },
    "notice.code_sent": {
        "en": "If the details match an application with an email address, we sent a code to"
        " that address (to the representative's, when the application has one). It is valid"
        " for 12 hours.",
        "fr": "Si les renseignements correspondent à une demande comportant une adresse"
        " courriel, nous avons envoyé un code à cette adresse (à celle du représentant, si la"
        " demande en a un). Il est valide pendant 12 heures.",
    },
    "notice.reset_sent": {
        "en": "If an account uses that login, we sent a code to its email address.",
        "fr": "Si un compte utilise cet identifiant, nous avons envoyé un code à son adresse"
        " courriel.",
    },
    "notice.title": {"en": "Information", "fr": "Information"},
    "notice.success": {"en": "Success", "fr": "Succès"},
    # register
    "register.title": {"en": "Create an account", "fr": "Créer un compte"},
    "register.intro": {
        "en": "Enter the details as they appear on the application. We will email you a"
        " verification code.",
        "fr": "Entrez les renseignements tels qu'ils figurent dans la demande. Nous vous"
        " enverrons un code de vérification par courriel.",
    },
    "register.submit": {"en": "Send me a code", "fr": "M'envoyer un code"},
    "register.have_code": {"en": "I already have a code", "fr": "J'ai déjà un code"},
    "verify.title": {"en": "Set your password", "fr": "Choisir votre mot de passe"},
    "verify.intro": {
        "en": "Enter the code from the email and choose a password.",
        "fr": "Entrez le code reçu par courriel et choisissez un mot de passe.",
    },
    "verify.submit": {"en": "Create my account", "fr": "Créer mon compte"},
    # reset
    "reset.title": {"en": "Reset your password", "fr": "Réinitialiser votre mot de passe"},
    "reset.intro": {
        "en": "Enter your login. We will email a code to the address on your account.",
        "fr": "Entrez votre identifiant. Nous enverrons un code à l'adresse courriel de votre"
        " compte.",
    },
    "reset.submit": {"en": "Send me a code", "fr": "M'envoyer un code"},
    "reset_confirm.title": {"en": "Choose a new password", "fr": "Choisir un nouveau mot de passe"},
    "reset_confirm.intro": {
        "en": "Enter the code from the email and your new password. Every session will be"
        " signed out.",
        "fr": "Entrez le code reçu par courriel et votre nouveau mot de passe. Toutes les"
        " sessions seront fermées.",
    },
    "reset_confirm.submit": {"en": "Change my password", "fr": "Changer mon mot de passe"},
    # applications
    "apps.title": {"en": "My applications", "fr": "Mes demandes"},
    "apps.none": {
        "en": "No application is linked to your account.",
        "fr": "Aucune demande n'est liée à votre compte.",
    },
    "apps.number": {"en": "Application", "fr": "Demande"},
    "apps.role": {"en": "Your role", "fr": "Votre rôle"},
    "apps.status": {"en": "Status", "fr": "État"},
    "apps.updated": {"en": "Last updated", "fr": "Dernière mise à jour"},
    "apps.unknown": {"en": "Not available yet", "fr": "Pas encore disponible"},
    # one application
    "app.title": {"en": "Application {number}", "fr": "Demande {number}"},
    "app.back": {"en": "Back to my applications", "fr": "Retour à mes demandes"},
    "app.overview": {"en": "Overview", "fr": "Aperçu"},
    "app.your_role": {"en": "Your role", "fr": "Votre rôle"},
    "app.category": {"en": "Category", "fr": "Catégorie"},
    "app.acknowledged_on": {"en": "Receipt confirmed on", "fr": "Réception confirmée le"},
    "app.decided_on": {"en": "Decided on", "fr": "Décision rendue le"},
    "app.progress": {
        "en": "{days} of {standard} days (service standard: 12 months)",
        "fr": "{days} jours sur {standard} (norme de service : 12 mois)",
    },
    "app.progress_label": {
        "en": "Time since we received the application",
        "fr": "Temps écoulé depuis la réception de la demande",
    },
    "app.standard_note": {
        "en": "Our service standard for these applications is 12 months. It is a goal, not a"
        " promise for your application.",
        "fr": "Notre norme de service pour ces demandes est de 12 mois. C'est un objectif, et"
        " non une promesse pour votre demande.",
    },
    "app.estimate_uncertainty": {
        "en": "Based on {decided} similar decided applications; {open} similar ones are still"
        " open. Your application may take more or less time.",
        "fr": "Selon {decided} demandes semblables ayant fait l'objet d'une décision; {open}"
        " autres sont encore ouvertes. Votre demande peut prendre plus ou moins de temps.",
    },
    "app.months_elapsed": {
        "en": "Your application has been in process for {months} months.",
        "fr": "Votre demande est en traitement depuis {months} mois.",
    },
    "app.before_aor": {
        "en": "We are checking that the application is complete. The details will show here"
        " once we confirm we received it.",
        "fr": "Nous vérifions que la demande est complète. Les détails s'afficheront ici une"
        " fois la réception confirmée.",
    },
    "app.sponsor_note": {
        "en": "As the sponsor, you see the overall status of the application and its main"
        " milestones. The principal applicant and their representative see the details.",
        "fr": "En tant que répondant, vous voyez l'état général de la demande et ses grandes"
        " étapes. Le demandeur principal et son représentant en voient les détails.",
    },
    "stages.label": {"en": "Progress of the application", "fr": "Progression de la demande"},
    "stage.received": {"en": "Application received", "fr": "Demande reçue"},
    "stage.in_progress": {"en": "Processing", "fr": "Traitement"},
    "stage.closed": {"en": "Final decision", "fr": "Décision finale"},
    "stage.done": {"en": "done", "fr": "terminé"},
    "stage.current": {"en": "current stage", "fr": "étape en cours"},
    "app.activity": {"en": "Activity", "fr": "Activité"},
    "app.activity_status": {"en": "Status", "fr": "État"},
    "app.documents": {"en": "Documents requested", "fr": "Documents demandés"},
    "app.documents_none": {
        "en": "We have not asked you for any documents.",
        "fr": "Nous ne vous avons demandé aucun document.",
    },
    "app.copr_issued": {
        "en": "Confirmation of permanent residence issued on {on}.",
        "fr": "Confirmation de résidence permanente délivrée le {on}.",
    },
    "app.due": {"en": "Due {on}", "fr": "À faire d'ici le {on}"},
    "app.no_due": {"en": "No due date", "fr": "Aucune date limite"},
    "app.history_none": {"en": "Nothing yet.", "fr": "Rien pour l'instant."},
    "app.contact": {"en": "Contact us", "fr": "Nous joindre"},
    "app.contact_link": {"en": "IRCC web form", "fr": "formulaire Web d'IRCC"},
    # account settings
    "settings.title": {"en": "Account settings", "fr": "Paramètres du compte"},
    "settings.notifications": {"en": "Email notifications", "fr": "Avis par courriel"},
    "settings.notifications_intro": {
        "en": "We can email you when something you can see in one of your applications"
        " changes. The email says what changed and links to this tracker.",
        "fr": "Nous pouvons vous envoyer un courriel lorsqu'un élément que vous pouvez voir"
        " dans l'une de vos demandes change. Le courriel indique ce qui a changé et contient"
        " un lien vers cet outil de suivi.",
    },
    "settings.state_on": {
        "en": "Email notifications are on",
        "fr": "Les avis par courriel sont activés",
    },
    "settings.state_off": {
        "en": "Email notifications are off",
        "fr": "Les avis par courriel sont désactivés",
    },
    "settings.submit": {"en": "Save", "fr": "Enregistrer"},
    "field.notifications": {
        "en": "Email me when my applications change",
        "fr": "M'envoyer un courriel lorsque mes demandes changent",
    },
    "field.notifications_hint": {
        "en": "You can change this at any time. Emails about your account itself (codes,"
        " password resets) are always sent.",
        "fr": "Vous pouvez modifier ce choix en tout temps. Les courriels qui concernent votre"
        " compte lui-même (codes, réinitialisation du mot de passe) sont toujours envoyés.",
    },
    "field.notifications_on": {"en": "Yes, email me", "fr": "Oui, m'envoyer un courriel"},
    "field.notifications_off": {
        "en": "No, do not email me",
        "fr": "Non, ne pas m'envoyer de courriel",
    },
    "error.choose_notifications": {
        "en": "Choose whether we email you when your applications change.",
        "fr": "Indiquez si nous devons vous envoyer un courriel lorsque vos demandes changent.",
    },
    "notice.notifications_on": {
        "en": "Saved. We will email you when your applications change.",
        "fr": "C'est enregistré. Nous vous enverrons un courriel lorsque vos demandes changeront.",
    },
    "notice.notifications_off": {
        "en": "Saved. We will no longer email you when your applications change.",
        "fr": "C'est enregistré. Nous ne vous enverrons plus de courriel lorsque vos demandes"
        " changeront.",
    },
    # error pages
    "notfound.title": {"en": "Page not found", "fr": "Page introuvable"},
    "notfound.text": {
        "en": "No application with that number is linked to your account, or the page does"
        " not exist.",
        "fr": "Aucune demande portant ce numéro n'est liée à votre compte, ou la page n'existe"
        " pas.",
    },
    "forbidden.title": {"en": "Your form expired", "fr": "Votre formulaire a expiré"},
    "forbidden.text": {
        "en": "For your security, we could not accept this form. Go back, reload the page and"
        " try again.",
        "fr": "Pour votre sécurité, nous n'avons pas pu accepter ce formulaire. Revenez en"
        " arrière, rechargez la page et réessayez.",
    },
    "back_home": {"en": "Go to the sign-in page", "fr": "Aller à la page de connexion"},
}

# Plain-language explanations: what each activity is, and what its status means.
ABOUT: dict[str, dict[str, str]] = {
    "sponsor_eligibility": {
        "en": "We check that the sponsor meets the requirements to sponsor a family member.",
        "fr": "Nous vérifions que le répondant remplit les conditions pour parrainer un membre"
        " de sa famille.",
    },
    "eligibility": {
        "en": "We check that the applicant meets the requirements of the program.",
        "fr": "Nous vérifions que le demandeur répond aux exigences du programme.",
    },
    "medical": {
        "en": "A panel physician checks the applicant's health.",
        "fr": "Un médecin désigné vérifie l'état de santé du demandeur.",
    },
    "biometrics": {
        "en": "We take the applicant's fingerprints and photo.",
        "fr": "Nous prenons les empreintes digitales et la photo du demandeur.",
    },
    "background_check": {
        "en": "We check the applicant's background, including criminal and security checks.",
        "fr": "Nous vérifions les antécédents du demandeur, y compris sur le plan criminel et"
        " de la sécurité.",
    },
}
MEANS: dict[str, dict[str, str]] = {
    "not_started": {
        "en": "We have not started this step yet.",
        "fr": "Nous n'avons pas encore commencé cette étape.",
    },
    "in_progress": {
        "en": "We are working on it. You do not need to do anything unless we contact you.",
        "fr": "Nous y travaillons. Vous n'avez rien à faire, sauf si nous communiquons avec vous.",
    },
    "action_required": {
        "en": "We need something from you: see your next steps.",
        "fr": "Nous avons besoin de quelque chose de votre part : consultez vos prochaines étapes.",
    },
    "completed": {"en": "This step is done.", "fr": "Cette étape est terminée."},
    "not_required": {
        "en": "This step is not needed for this application.",
        "fr": "Cette étape n'est pas nécessaire pour cette demande.",
    },
}

_MONTHS = {
    "en": [
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ],
    "fr": [
        "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
        "septembre", "octobre", "novembre", "décembre",
    ],
}  # fmt: skip


def t(key: str, lang: str, **values: object) -> str:
    """The page's text ``key`` in ``lang``; the tracker's own (projections.labels) when the
    page has none of that name."""
    entry = TEXTS.get(key)
    if entry is None:
        return labels.text(key, lang, **{k: str(v) for k, v in values.items()})
    found = entry.get(lang, entry["en"])
    return found.format(**values) if values else found


def long_date(value: str | date | datetime | None, lang: str) -> str:
    """A date as people write it: "March 5, 2026" or "5 mars 2026" (1er for the first)."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    month = _MONTHS["fr" if lang == "fr" else "en"][value.month - 1]
    if lang == "fr":
        day = "1er" if value.day == 1 else str(value.day)
        return f"{day} {month} {value.year}"
    return f"{month} {value.day}, {value.year}"


def number(value: int | float, lang: str) -> str:
    """Grouped digits: 12,345 in English, 12 345 in French (a narrow no-break space)."""
    grouped = f"{value:,}"
    return grouped.replace(",", "\u202f") if lang == "fr" else grouped
