//! text_translator: translates text, through the LLM when one is configured and allowed, and
//! otherwise word by word with a built-in glossary of common words.
//!
//! The glossary path is honest about its limits: it keeps words it does not know as they are,
//! lists them, and reports the share it covered, so a caller can tell a rough draft from a
//! translation. Languages: English, Spanish, French, German, Italian, Portuguese; any pair goes
//! through English.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{AgentError, Context, parse};

#[derive(Deserialize)]
struct Input {
    text: String,
    target_language: String,
    #[serde(default)]
    source_language: Option<String>,
}

pub const LANGUAGES: &[&str] = &["en", "es", "fr", "de", "it", "pt"];

/// English word, then es, fr, de, it, pt.
const GLOSSARY: &[[&str; 6]] = &[
    ["hello", "hola", "bonjour", "hallo", "ciao", "olá"],
    [
        "goodbye",
        "adiós",
        "au revoir",
        "auf wiedersehen",
        "arrivederci",
        "adeus",
    ],
    [
        "thank you",
        "gracias",
        "merci",
        "danke",
        "grazie",
        "obrigado",
    ],
    [
        "please",
        "por favor",
        "s'il vous plaît",
        "bitte",
        "per favore",
        "por favor",
    ],
    ["yes", "sí", "oui", "ja", "sì", "sim"],
    ["no", "no", "non", "nein", "no", "não"],
    ["good", "bueno", "bon", "gut", "buono", "bom"],
    ["morning", "mañana", "matin", "morgen", "mattina", "manhã"],
    ["night", "noche", "nuit", "nacht", "notte", "noite"],
    ["day", "día", "jour", "tag", "giorno", "dia"],
    ["world", "mundo", "monde", "welt", "mondo", "mundo"],
    ["friend", "amigo", "ami", "freund", "amico", "amigo"],
    ["house", "casa", "maison", "haus", "casa", "casa"],
    ["water", "agua", "eau", "wasser", "acqua", "água"],
    ["food", "comida", "nourriture", "essen", "cibo", "comida"],
    ["book", "libro", "livre", "buch", "libro", "livro"],
    [
        "computer",
        "ordenador",
        "ordinateur",
        "computer",
        "computer",
        "computador",
    ],
    ["code", "código", "code", "code", "codice", "código"],
    [
        "project", "proyecto", "projet", "projekt", "progetto", "projeto",
    ],
    ["team", "equipo", "équipe", "team", "squadra", "equipe"],
    [
        "user",
        "usuario",
        "utilisateur",
        "benutzer",
        "utente",
        "usuário",
    ],
    ["data", "datos", "données", "daten", "dati", "dados"],
    ["file", "archivo", "fichier", "datei", "file", "arquivo"],
    ["error", "error", "erreur", "fehler", "errore", "erro"],
    ["time", "tiempo", "temps", "zeit", "tempo", "tempo"],
    ["year", "año", "année", "jahr", "anno", "ano"],
    ["new", "nuevo", "nouveau", "neu", "nuovo", "novo"],
    ["big", "grande", "grand", "groß", "grande", "grande"],
    ["small", "pequeño", "petit", "klein", "piccolo", "pequeno"],
    ["the", "el", "le", "der", "il", "o"],
    ["a", "un", "un", "ein", "un", "um"],
    ["and", "y", "et", "und", "e", "e"],
    ["or", "o", "ou", "oder", "o", "ou"],
    ["is", "es", "est", "ist", "è", "é"],
    ["are", "son", "sont", "sind", "sono", "são"],
    ["i", "yo", "je", "ich", "io", "eu"],
    ["you", "tú", "tu", "du", "tu", "você"],
    ["we", "nosotros", "nous", "wir", "noi", "nós"],
    ["my", "mi", "mon", "mein", "mio", "meu"],
    ["love", "amor", "amour", "liebe", "amore", "amor"],
    ["how", "cómo", "comment", "wie", "come", "como"],
    ["what", "qué", "quoi", "was", "cosa", "o que"],
    ["where", "dónde", "où", "wo", "dove", "onde"],
    ["today", "hoy", "aujourd'hui", "heute", "oggi", "hoje"],
    ["tomorrow", "mañana", "demain", "morgen", "domani", "amanhã"],
    ["with", "con", "avec", "mit", "con", "com"],
    ["for", "para", "pour", "für", "per", "para"],
    ["of", "de", "de", "von", "di", "de"],
    ["in", "en", "dans", "in", "in", "em"],
    ["to", "a", "à", "zu", "a", "para"],
    ["this", "este", "ce", "dies", "questo", "este"],
    [
        "welcome",
        "bienvenido",
        "bienvenue",
        "willkommen",
        "benvenuto",
        "bem-vindo",
    ],
];

fn column(language: &str) -> Result<usize, AgentError> {
    LANGUAGES
        .iter()
        .position(|l| *l == language)
        .ok_or_else(|| AgentError::InvalidInput(format!("unsupported language {language:?}")))
}

pub async fn run(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let input: Input = parse(input)?;
    let target = input.target_language.to_lowercase();
    let source = match &input.source_language {
        Some(language) => language.to_lowercase(),
        None => detect(&input.text).to_owned(),
    };
    if ctx.has_llm() {
        let prompt = format!(
            "Translate from {source} to {target}. Answer with the translation only.\n\n{}",
            input.text
        );
        let translated = ctx
            .ask_for("You are a precise translator.", prompt, |answer| {
                Ok(answer.trim().to_owned())
            })
            .await;
        if let Some(text) = translated {
            return Ok(json!({
                "translated_text": text,
                "source_language": source,
                "target_language": target,
                "method": "llm",
                "coverage": 1.0,
                "untranslated": [],
            }));
        }
    }
    let (text, coverage, untranslated) =
        glossary_translate(&input.text, column(&source)?, column(&target)?);
    Ok(json!({
        "translated_text": text,
        "source_language": source,
        "target_language": target,
        "method": "glossary",
        "coverage": coverage,
        "untranslated": untranslated,
    }))
}

/// The glossary language with the most known words in `text` (English on a tie).
fn detect(text: &str) -> &'static str {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| bare(w).to_lowercase())
        .collect();
    let mut best = (0, "en");
    for (i, language) in LANGUAGES.iter().enumerate() {
        let hits = words
            .iter()
            .filter(|w| GLOSSARY.iter().any(|row| row[i] == w.as_str()))
            .count();
        if hits > best.0 {
            best = (hits, language);
        }
    }
    best.1
}

fn bare(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
}

/// Translates longest glossary phrases first (up to three words), keeping punctuation and an
/// initial capital.
fn glossary_translate(text: &str, from: usize, to: usize) -> (String, f64, Vec<String>) {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    let mut untranslated = Vec::new();
    let mut known = 0;
    let mut i = 0;
    while i < tokens.len() {
        let found = (1..=3).rev().find_map(|n| {
            let phrase = tokens.get(i..i + n)?;
            let key = phrase
                .iter()
                .map(|w| bare(w).to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            GLOSSARY
                .iter()
                .find(|row| row[from] == key)
                .map(|row| (n, row[to]))
        });
        match found {
            Some((n, word)) => {
                let first = tokens[i];
                let last = tokens[i + n - 1];
                let lead: String = first.chars().take_while(|c| !c.is_alphanumeric()).collect();
                let trail: String = last
                    .chars()
                    .rev()
                    .take_while(|c| !c.is_alphanumeric())
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let capital = bare(first).chars().next().is_some_and(char::is_uppercase);
                out.push(format!(
                    "{lead}{}{trail}",
                    if capital {
                        capitalise(word)
                    } else {
                        word.to_owned()
                    }
                ));
                known += n;
                i += n;
            }
            None => {
                out.push(tokens[i].to_owned());
                let word = bare(tokens[i]);
                if word.chars().any(char::is_alphabetic) {
                    untranslated.push(word.to_owned());
                } else {
                    known += 1;
                }
                i += 1;
            }
        }
    }
    let coverage = if tokens.is_empty() {
        1.0
    } else {
        known as f64 / tokens.len() as f64
    };
    (
        out.join(" "),
        (coverage * 100.0).round() / 100.0,
        untranslated,
    )
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_words_and_phrases_are_translated_and_unknown_ones_reported() {
        let (text, coverage, untranslated) = glossary_translate(
            "Hello world, thank you! Kubernetes",
            column("en").unwrap(),
            column("es").unwrap(),
        );
        assert_eq!(text, "Hola mundo, gracias! Kubernetes");
        assert_eq!(untranslated, ["Kubernetes"]);
        assert_eq!(coverage, 0.8);
        assert_eq!(detect("Bonjour le monde"), "fr");
        let (text, _, _) = glossary_translate(
            "Bonjour le monde",
            column("fr").unwrap(),
            column("de").unwrap(),
        );
        assert_eq!(text, "Hallo der welt");
    }
}
