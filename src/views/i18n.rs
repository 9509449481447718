//! English and French. The English text is the key; the catalogue maps it
//! to French, and anything missing stays English.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// The first supported language of an `Accept-Language` header, by
    /// quality (ties keep the header's order); English by default.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else { return Lang::En };
        let mut best: Option<(f32, usize, Lang)> = None;
        for (index, part) in header.split(',').enumerate() {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.trim().parse::<f32>().ok()))
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or("") {
                "fr" => Lang::Fr,
                "en" => Lang::En,
                _ => continue,
            };
            if q <= 0.0 {
                continue;
            }
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && index < bi)) {
                best = Some((q, index, lang));
            }
        }
        best.map(|(_, _, l)| l).unwrap_or(Lang::En)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn t(self, text: &'static str) -> &'static str {
        match self {
            Lang::En => text,
            Lang::Fr => french(text).unwrap_or(text),
        }
    }

    /// A message of the server's rules (a validation error, a refusal) in
    /// this language. The rules speak English, Laravel's sentences with the
    /// field's name inside ("The email field is required.", the API's
    /// wording); a French page rebuilds the sentence from its pattern with
    /// the field's name translated. Anything unknown stays English.
    pub fn message(self, text: &str) -> Cow<'_, str> {
        if self == Lang::En {
            return Cow::Borrowed(text);
        }
        if let Some(fixed) = french(text).or_else(|| french_message(text)) {
            return Cow::Borrowed(fixed);
        }
        for (english, french) in MESSAGE_PATTERNS {
            if let Some(values) = fill_in(english, text) {
                let mut out = String::new();
                let mut values = values.into_iter();
                for (i, piece) in french.split("{}").enumerate() {
                    if i > 0 {
                        let value = values.next().unwrap_or_default();
                        out.push_str(french_field(value).unwrap_or(value));
                    }
                    out.push_str(piece);
                }
                return Cow::Owned(out);
            }
        }
        Cow::Borrowed(text)
    }
}

/// The values that fill the `{}` holes of `pattern` to make `text`, if it
/// has that shape (each hole non-empty).
fn fill_in<'t>(pattern: &str, text: &'t str) -> Option<Vec<&'t str>> {
    let pieces: Vec<&str> = pattern.split("{}").collect();
    let (first, rest) = pieces.split_first()?;
    let mut remaining = text.strip_prefix(first)?;
    let mut values = Vec::new();
    for (i, piece) in rest.iter().enumerate() {
        let end =
            if i == rest.len() - 1 { remaining.strip_suffix(piece).map(str::len)? } else { remaining.find(piece)? };
        if end == 0 {
            return None;
        }
        values.push(&remaining[..end]);
        remaining = &remaining[end + piece.len()..];
    }
    (remaining.is_empty() || rest.is_empty()).then_some(values)
}

/// The rules' sentences with a field's name (and a number) inside, and
/// their French (laravel-lang's wording).
const MESSAGE_PATTERNS: &[(&str, &str)] = &[
    (
        "The {} field is required when phone is not present.",
        "Le champ {} est obligatoire quand le téléphone n'est pas renseigné.",
    ),
    ("The {} field is required.", "Le champ {} est obligatoire."),
    ("The {} has already been taken.", "La valeur du champ {} est déjà utilisée."),
    ("The {} must be at least {} characters.", "Le champ {} doit contenir au moins {} caractères."),
    ("The {} may not be greater than {} characters.", "Le champ {} ne peut pas dépasser {} caractères."),
    ("The {} must be a valid email address.", "Le champ {} doit être une adresse e-mail valide."),
    ("The {} confirmation does not match.", "La confirmation du champ {} ne correspond pas."),
    ("The {} format is invalid.", "Le format du champ {} est invalide."),
    ("The selected {} is invalid.", "Le champ {} sélectionné est invalide."),
    ("The {} must be accepted.", "Le champ {} doit être accepté."),
    ("The {} must be a string.", "Le champ {} doit être une chaîne de caractères."),
    ("The {} field must be true or false.", "Le champ {} doit être vrai ou faux."),
    (
        "The {} must be a phone number starting with + followed by digits.",
        "Le champ {} doit être un numéro de téléphone commençant par + suivi de chiffres.",
    ),
    (
        "The {} must be a host name, optionally followed by :port.",
        "Le champ {} doit être un nom d'hôte, suivi ou non de :port.",
    ),
    ("The {} must only contain {}.", "Le champ {} ne doit contenir que {}."),
    (
        "The {} may not contain spaces, @, :, ;, <, > or quotes.",
        "Le champ {} ne peut pas contenir d'espaces, @, :, ;, <, > ni de guillemets.",
    ),
];

/// Field names as the rules write them (`_` as spaces), in French.
fn french_field(name: &str) -> Option<&'static str> {
    Some(match name {
        "username" => "nom d'utilisateur",
        "password" => "mot de passe",
        "old password" => "mot de passe actuel",
        "password confirmation" => "confirmation du mot de passe",
        "email" => "adresse e-mail",
        "phone" => "numéro de téléphone",
        "display name" => "nom affiché",
        "domain" => "domaine",
        "sip domain" => "domaine SIP",
        "code" => "code",
        "identifier" => "identifiant",
        "host" => "hôte",
        "realm" => "domaine d'authentification",
        "protocol" => "protocole",
        "key" => "clé",
        "file" => "fichier",
        "account creation token" => "jeton de création de compte",
        _ => return None,
    })
}

/// Whole sentences of the rules and of refusals.
fn french_message(text: &str) -> Option<&'static str> {
    Some(match text {
        "Wrong username or password." => "Nom d'utilisateur ou mot de passe incorrect.",
        "Wrong code" => "Code incorrect",
        "The code must be 4 digits." => "Le code doit comporter 4 chiffres.",
        "The current password is incorrect." => "Le mot de passe actuel est incorrect.",
        "The email must be different from the current one." => "L'adresse e-mail doit être différente de l'actuelle.",
        "The username cannot be a phone number." => "Le nom d'utilisateur ne peut pas être un numéro de téléphone.",
        "No uppercase letters are allowed." => "Les majuscules ne sont pas autorisées.",
        "Too many requests, please retry later." => "Trop de requêtes, veuillez réessayer plus tard.",
        "The email could not be sent, please retry later." => {
            "L'e-mail n'a pas pu être envoyé, veuillez réessayer plus tard."
        }
        "The SMS could not be sent, please retry later." => {
            "Le SMS n'a pas pu être envoyé, veuillez réessayer plus tard."
        }
        "The account has no email address." => "Le compte n'a pas d'adresse e-mail.",
        "The account has no phone number." => "Le compte n'a pas de numéro de téléphone.",
        "The identifier does not match your SIP address." => "L'identifiant ne correspond pas à votre adresse SIP.",
        "The display name must be a single line of at most 255 characters." => {
            "Le nom affiché doit tenir sur une ligne d'au plus 255 caractères."
        }
        "The database is busy, please retry." => "La base de données est occupée, veuillez réessayer.",
        "You cannot remove your own admin role." => "Vous ne pouvez pas retirer votre propre rôle d'administrateur.",
        _ => return None,
    })
}

fn french(text: &str) -> Option<&'static str> {
    Some(match text {
        "Login" => "Connexion",
        "Logout" => "Déconnexion",
        "Register" => "Créer un compte",
        "Subscribe to the newsletter" => "S'abonner à la newsletter",
        "Home" => "Accueil",
        "Documentation" => "Documentation",
        "Go to the homepage" => "Retour à l'accueil",
        "Please correct the errors below." => "Veuillez corriger les erreurs ci-dessous.",
        "Username" => "Nom d'utilisateur",
        "Username or phone number" => "Nom d'utilisateur ou numéro de téléphone",
        "Password" => "Mot de passe",
        "Password confirmation" => "Confirmation du mot de passe",
        "Current password" => "Mot de passe actuel",
        "Create an account" => "Créer un compte",
        "Manage your account" => "Gérer votre compte",
        "accounts" => "comptes",
        "No account yet?" => "Pas encore de compte ?",
        "Email address" => "Adresse e-mail",
        "Email confirmation" => "Confirmation de l'adresse e-mail",
        "Phone number" => "Numéro de téléphone",
        "Delete" => "Supprimer",
        "Edit" => "Modifier",
        "Create" => "Créer",
        "Save" => "Enregistrer",
        "Cancel" => "Annuler",
        "Search" => "Rechercher",
        "Accounts" => "Comptes",
        "Account types" => "Types de compte",
        "Statistics" => "Statistiques",
        "Admin area" => "Administration",
        "Account information" => "Informations du compte",
        "SIP address" => "Adresse SIP",
        "Domain" => "Domaine",
        "API Key" => "Clé d'API",
        "Generate" => "Générer",
        "Change my current account email" => "Changer l'adresse e-mail de mon compte",
        "Set my password" => "Définir mon mot de passe",
        "Change my password" => "Changer mon mot de passe",
        "Delete my account" => "Supprimer mon compte",
        "Manage my devices" => "Gérer mes appareils",
        "No email yet" => "Pas encore d'adresse e-mail",
        "SHA-256 password configured" => "Mot de passe SHA-256 configuré",
        "MD5 password only" => "Mot de passe MD5 uniquement",
        "Set my account password" => "Définir le mot de passe de mon compte",
        "Change my account password" => "Changer le mot de passe de mon compte",
        "Use a SHA-256 password (some old SIP clients do not support it)" => {
            "Utiliser un mot de passe SHA-256 (certains anciens clients SIP ne le gèrent pas)"
        }
        "The feature is not enabled on this instance." => "La fonctionnalité n'est pas activée sur cette instance.",
        "Activated" => "Activé",
        "Unactivated" => "Non activé",
        "Activate" => "Activer",
        "Deactivate" => "Désactiver",
        "Admin" => "Administrateur",
        "Not Admin" => "Non administrateur",
        "Add admin role" => "Donner le rôle administrateur",
        "Remove admin role" => "Retirer le rôle administrateur",
        "Provisioning" => "Provisionnement",
        "Renew the provision link" => "Renouveler le lien de provisionnement",
        "Generate a provision link" => "Générer un lien de provisionnement",
        "Previous" => "Précédent",
        "Next" => "Suivant",
        "Created" => "Créé",
        "Day" => "Jour",
        "Week" => "Semaine",
        "Month" => "Mois",
        "Recover your account" => "Récupérer votre compte",
        "Send the authentication link" => "Envoyer le lien d'authentification",
        "Check your mailbox" => "Consultez votre boîte mail",
        "Display name" => "Nom affiché",
        "Not Found" => "Introuvable",
        "Forbidden" => "Interdit",
        "Server Error" => "Erreur du serveur",
        "Too Many Requests" => "Trop de requêtes",
        "Invalid data" => "Données invalides",
        "External Account" => "Compte externe",
        "Attach an External Account" => "Associer un compte externe",
        "Edit the External Account" => "Modifier le compte externe",
        "No External Account attached." => "Aucun compte externe associé.",
        "Attach an imported External Account" => "Associer un compte externe importé",
        "left" => "restants",
        "Imported External Accounts:" => "Comptes externes importés :",
        "External Account saved." => "Compte externe enregistré.",
        "External Account removed." => "Compte externe supprimé.",
        "External Account attached." => "Compte externe associé.",
        "Realm" => "Domaine d'authentification (realm)",
        "Registrar" => "Serveur d'enregistrement",
        "Outbound proxy" => "Proxy sortant",
        "Protocol" => "Protocole",
        "the domain" => "le domaine",
        "Host name, optionally followed by :port; the domain when empty." => {
            "Nom d'hôte, suivi éventuellement de :port ; le domaine s'il est vide."
        }
        "Fill to change. Required when the username, domain or realm changes." => {
            "À remplir pour le changer. Obligatoire si le nom d'utilisateur, le domaine ou le realm change."
        }
        "Fill to change. Required when the username changes: the stored hash depends on it." => {
            "À remplir pour le changer. Obligatoire si le nom d'utilisateur change : l'empreinte enregistrée en dépend."
        }
        "At least 6 characters." => "Au moins 6 caractères.",
        "This link is not valid anymore: ask for a new one." => "Ce lien n'est plus valide : demandez-en un nouveau.",
        "Not a phone number, no capital letters." => "Pas un numéro de téléphone, pas de majuscules.",
        "Optional: your phone number is used otherwise. Not a phone number, no capital letters." => {
            "Facultatif : votre numéro de téléphone est utilisé sinon. Pas un numéro de téléphone, pas de majuscules."
        }
        "Edit an account" => "Modifier un compte",
        "Contacts" => "Contacts",
        "Actions" => "Actions",
        "Types" => "Types",
        "Add a contact" => "Ajouter un contact",
        "Add an action" => "Ajouter une action",
        "Add a type" => "Ajouter un type",
        "No contact." => "Aucun contact.",
        "No action." => "Aucune action.",
        "No type." => "Aucun type.",
        "Configure a DTMF protocol on the account to manage its actions." => {
            "Configurez un protocole DTMF sur le compte pour gérer ses actions."
        }
        "Registrations per period" => "Inscriptions par période",
        "registrations in this period." => "inscriptions sur cette période.",
        "Unactivated phones" => "Téléphones non activés",
        "Activated phones" => "Téléphones activés",
        "Unactivated emails" => "E-mails non activés",
        "Activated emails" => "E-mails activés",
        "Activated email" => "E-mail activé",
        "Unactivated email" => "E-mail non activé",
        "Activated phone" => "Téléphone activé",
        "Unactivated phone" => "Téléphone non activé",
        "Account creation" => "Création de compte",
        "Confirm you are a human to continue the account creation in your app." => {
            "Confirmez que vous êtes un humain pour poursuivre la création du compte dans votre application."
        }
        "I'm not a robot" => "Je ne suis pas un robot",
        "Please verify that you are not a robot." => "Veuillez confirmer que vous n'êtes pas un robot.",
        "Captcha error! Try again later or contact the site admin." => {
            "Erreur de captcha ! Réessayez plus tard ou contactez l'administrateur du site."
        }
        "Thank you" => "Merci",
        "The request is validated: you can go back to your app to continue." => {
            "La demande est validée : vous pouvez retourner dans votre application pour continuer."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn negotiation() {
        assert_eq!(Lang::from_accept_language(None), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("en-US,fr;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("de, fr;q=0.3")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("fr;q=0")), Lang::En);
        assert_eq!(Lang::Fr.t("Login"), "Connexion");
        assert_eq!(Lang::Fr.t("Unknown text"), "Unknown text");
    }

    #[test]
    fn rule_messages_in_french() {
        let fr = |m: &str| Lang::Fr.message(m).into_owned();
        assert_eq!(fr("The email field is required."), "Le champ adresse e-mail est obligatoire.");
        assert_eq!(fr("The display name field is required."), "Le champ nom affiché est obligatoire.");
        assert_eq!(
            fr("The username has already been taken."),
            "La valeur du champ nom d'utilisateur est déjà utilisée."
        );
        assert_eq!(
            fr("The password must be at least 6 characters."),
            "Le champ mot de passe doit contenir au moins 6 caractères."
        );
        assert_eq!(
            fr("The email field is required when phone is not present."),
            "Le champ adresse e-mail est obligatoire quand le téléphone n'est pas renseigné."
        );
        assert_eq!(
            fr("The password confirmation does not match."),
            "La confirmation du champ mot de passe ne correspond pas."
        );
        assert_eq!(fr("Wrong username or password."), "Nom d'utilisateur ou mot de passe incorrect.");
        // An unknown field keeps its name; an unknown sentence stays English.
        assert_eq!(fr("The pn prid field is required."), "Le champ pn prid est obligatoire.");
        assert_eq!(fr("Something else entirely."), "Something else entirely.");
        assert_eq!(fr("The  field is required."), "The  field is required.");
        // English is left as it is.
        assert_eq!(Lang::En.message("The email field is required."), "The email field is required.");
    }
}
