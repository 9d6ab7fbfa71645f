//! Outgoing mail: one [`Mailer`] with two real transports, SMTP (lettre over rustls) and an
//! outbox directory where each message is one `.eml` file, written atomically.
//!
//! Messages are multipart (text and HTML) rendered from templates, with links built from the
//! configured public URL, never from the request's `Host`.

use std::path::PathBuf;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message could not be built (bad address, template error).
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The SMTP server refused it or could not be reached.
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    /// The outbox could not be written.
    #[error("cannot write the outbox: {0}")]
    Outbox(#[from] std::io::Error),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Sends mail through the configured transport.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// A message ready to send.
#[derive(Debug, Clone)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl Mailer {
    /// The transport the configuration names: SMTP when `smtp_url` is set, else the outbox.
    pub fn from_config(config: &Config) -> Result<Self, MailError> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| MailError::Build(format!("mail_from: {e}")))?;
        let transport = match &config.smtp_url {
            Some(url) => {
                // `smtp://` without a `tls` parameter upgrades with STARTTLS when offered.
                let url = if url.starts_with("smtp://") && !url.contains("tls=") {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{sep}tls=opportunistic")
                } else {
                    url.clone()
                };
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
                    .map_err(|e| MailError::Smtp(e.to_string()))?
                    .timeout(Some(std::time::Duration::from_secs(10)))
                    .build();
                Transport::Smtp(transport)
            }
            None => Transport::Outbox(config.mail_outbox.clone()),
        };
        Ok(Self { transport, from })
    }

    /// Sends one message.
    #[tracing::instrument(skip_all, fields(subject = %email.subject))]
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(plain_body(&email.text)),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(plain_body(&email.html)),
                    ),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
                tracing::info!("mail sent over SMTP");
            }
            Transport::Outbox(dir) => {
                let path = write_outbox(dir, &message.formatted()).await?;
                tracing::info!(file = %path.display(), "mail written to the outbox");
            }
        }
        Ok(())
    }
}

/// The body unencoded (8bit) when every line fits the 998-octet limit of RFC 5322, so a
/// link in it stays one searchable line (quoted-printable would break it with `=` soft line
/// breaks and turn `=` into `=3D`); otherwise lettre's choice.
fn plain_body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let fits = crlf.split("\r\n").all(|line| line.len() <= 998) && !crlf.contains('\0');
    if fits {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_owned())
    }
}

/// Writes a temporary file, then renames it, so a reader never sees half a message. The
/// messages hold live reset links, so the directory is 0700 and each file 0600 from the moment
/// it exists (SECURITY O4).
async fn write_outbox(dir: &std::path::Path, bytes: &[u8]) -> Result<PathBuf, std::io::Error> {
    create_private_dir(dir).await?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(std::io::Error::other)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    let name: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let final_path = dir.join(format!("{stamp}-{name}.eml"));
    let temp_path = dir.join(format!(".{stamp}-{name}.tmp"));
    write_private_file(&temp_path, bytes).await?;
    tokio::fs::rename(&temp_path, &final_path).await?;
    Ok(final_path)
}

/// Creates `dir` (and missing parents) with mode 0700, and takes group and other access away
/// from it when it already exists.
async fn create_private_dir(dir: &std::path::Path) -> Result<(), std::io::Error> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = tokio::fs::metadata(dir).await?.permissions().mode();
        if mode & 0o077 != 0 {
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)).await?;
        }
    }
    Ok(())
}

/// Writes a new file that only its owner can read (created 0600, never wider).
async fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    let path = path.to_owned();
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        file.write_all(&bytes)?;
        file.flush()
    })
    .await
    .map_err(std::io::Error::other)?
}
