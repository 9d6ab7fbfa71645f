//! The mails latch sends, rendered from `templates/mail/` (text and HTML). Links are built
//! from the configured public URL only.

use minijinja::{context, Environment};

use crate::mail::Email;
use crate::state::AppState;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "verify_email.txt",
        include_str!("../../templates/mail/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("../../templates/mail/verify_email.html"),
    ),
    (
        "reset_password.txt",
        include_str!("../../templates/mail/reset_password.txt"),
    ),
    (
        "reset_password.html",
        include_str!("../../templates/mail/reset_password.html"),
    ),
    (
        "notice.txt",
        include_str!("../../templates/mail/notice.txt"),
    ),
    (
        "notice.html",
        include_str!("../../templates/mail/notice.html"),
    ),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "mail template does not parse");
        }
    }
    env
}

fn render(name: &str, ctx: minijinja::Value) -> Result<(String, String), minijinja::Error> {
    let env = environment();
    let text = env
        .get_template(&format!("{name}.txt"))?
        .render(ctx.clone())?;
    let html = env.get_template(&format!("{name}.html"))?.render(ctx)?;
    Ok((text, html))
}

/// `<public-url><path>?token=<token>`. The origin is re-serialised by the URL parser (so no
/// quote or space can reach the HTML `href`, which the templates print unescaped to keep the
/// link readable), and never taken from the request.
pub fn link(state: &AppState, path: &str, token: Option<&str>) -> String {
    let configured = state
        .config
        .public_url
        .as_deref()
        .unwrap_or("http://127.0.0.1:8080");
    let base = url::Url::parse(configured)
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    match token {
        Some(token) => format!("{base}{path}?token={token}"),
        None => format!("{base}{path}"),
    }
}

/// The verification mail for `email`.
pub fn verify_email(
    state: &AppState,
    username: &str,
    email: &str,
    token: &str,
) -> Result<Email, minijinja::Error> {
    let link = link(state, "/verify-email", Some(token));
    let (text, html) = render("verify_email", context! { username, email, link })?;
    Ok(Email {
        to: email.to_owned(),
        subject: "Confirm your email address".into(),
        text,
        html,
    })
}

/// The password reset mail.
pub fn reset_password(
    state: &AppState,
    username: &str,
    email: &str,
    token: &str,
) -> Result<Email, minijinja::Error> {
    let link = link(state, "/reset-password", Some(token));
    let (text, html) = render("reset_password", context! { username, link })?;
    Ok(Email {
        to: email.to_owned(),
        subject: "Reset your password".into(),
        text,
        html,
    })
}

/// A notice of a change to the account (password changed or reset, email changed).
pub fn notice(
    state: &AppState,
    username: &str,
    email: &str,
    subject: &str,
    message: &str,
) -> Result<Email, minijinja::Error> {
    let link = link(state, "/forgot-password", None);
    let (text, html) = render("notice", context! { username, message, link })?;
    Ok(Email {
        to: email.to_owned(),
        subject: subject.to_owned(),
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        let mut env = minijinja::Environment::new();
        for (name, source) in super::TEMPLATES {
            env.add_template(name, source).unwrap();
        }
    }
}
