//! English and French. The English text is the key; the catalogue maps it
//! to French, and anything missing stays English.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
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
}
