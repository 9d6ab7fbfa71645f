//! Page templates, compiled into the binary and autoescaped (every `.html` template escapes
//! what it prints, so user text is inert).

use minijinja::Environment;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("account.html", include_str!("../templates/account.html")),
    (
        "account_sessions.html",
        include_str!("../templates/account_sessions.html"),
    ),
    (
        "account_tokens.html",
        include_str!("../templates/account_tokens.html"),
    ),
    (
        "forgot_password.html",
        include_str!("../templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("../templates/reset_password.html"),
    ),
    (
        "verify_email.html",
        include_str!("../templates/verify_email.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    ("app.html", include_str!("../templates/app.html")),
    (
        "login_mfa.html",
        include_str!("../templates/login_mfa.html"),
    ),
    (
        "account_security.html",
        include_str!("../templates/account_security.html"),
    ),
    ("register.html", include_str!("../templates/register.html")),
    (
        "dashboard.html",
        include_str!("../templates/dashboard.html"),
    ),
    (
        "admin_users.html",
        include_str!("../templates/admin_users.html"),
    ),
    (
        "admin_user.html",
        include_str!("../templates/admin_user.html"),
    ),
    (
        "admin_user_delete.html",
        include_str!("../templates/admin_user_delete.html"),
    ),
    (
        "posts_list.html",
        include_str!("../templates/posts_list.html"),
    ),
    (
        "posts_show.html",
        include_str!("../templates/posts_show.html"),
    ),
    (
        "posts_form.html",
        include_str!("../templates/posts_form.html"),
    ),
];

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads every template. They are compile-time constants; a syntax error fails the test
    /// suite (`templates_parse`) rather than a request.
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        Self { env }
    }

    /// Renders `name` with `context`.
    pub fn render(
        &self,
        name: &str,
        context: minijinja::Value,
    ) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap();
        }
    }

    #[test]
    fn user_text_is_escaped() {
        let t = Templates::new();
        let html = t
            .render(
                "dashboard.html",
                minijinja::context! { user => minijinja::context! { username => "<script>alert(1)</script>", roles => Vec::<String>::new() }, csrf_token => "t" },
            )
            .unwrap();
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
