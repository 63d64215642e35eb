//! The test builders: test_suite writes pytest unit tests of the generated pure-Python modules
//! (validation, security, roles, email, payments, markdown), which need nothing but pytest;
//! integration_test writes API tests that drive the FastAPI app on an in-memory SQLite
//! database, skipped (by `pytest.importorskip`) where FastAPI, SQLAlchemy or httpx is absent.

use std::fmt::Write;

use serde_json::{Value, json};

use super::backend::finish;
use super::project::{Entity, Project};
use super::{AgentError, Context};

const CONFTEST: &str = "\"\"\"Makes the `app` package importable from the tests.\"\"\"\nimport sys\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n";

/// A valid payload of `entity` as a Python dict literal; references only `with_references`
/// (the API tests fill them with the ids of rows they created).
fn sample(entity: &Entity, n: usize, with_references: bool) -> String {
    let fields: Vec<String> = entity
        .fields
        .iter()
        .filter(|f| with_references || f.references.is_none())
        .map(|f| format!("\"{}\": {}", f.column, f.kind.python_sample(n)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

pub fn unit(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files = vec![("backend/tests/conftest.py".to_owned(), CONFTEST.to_owned())];
    let mut validation = String::from(
        "\"\"\"Payload validation of every entity.\"\"\"\nfrom app import validation\n",
    );
    let mut count = 0;
    for entity in &p.entities {
        let s = &entity.singular;
        let _ = write!(
            validation,
            "\n\ndef test_a_valid_{s}_has_no_errors():\n    assert validation.validate_{s}({sample}) == []\n\n\ndef test_unknown_{s}_fields_are_reported():\n    assert validation.validate_{s}({{\"no_such_field\": 1}}, partial=True) == [\"no_such_field is not a field of {s}\"]\n",
            sample = sample(entity, 1, true)
        );
        count += 2;
        for field in &entity.fields {
            let column = &field.column;
            if field.required {
                let _ = write!(
                    validation,
                    "\n\ndef test_{s}_{column}_is_required():\n    assert \"{column} is required\" in validation.validate_{s}({{}})\n    assert validation.validate_{s}({{}}, partial=True) == []\n"
                );
                count += 1;
            }
            let _ = write!(
                validation,
                "\n\ndef test_{s}_{column}_of_the_wrong_type_is_refused():\n    errors = validation.validate_{s}({{\"{column}\": {wrong}}}, partial=True)\n    assert len(errors) == 1 and errors[0].startswith(\"{column} \")\n",
                wrong = field.kind.python_wrong()
            );
            count += 1;
        }
    }
    files.push(("backend/tests/test_validation.py".to_owned(), validation));
    if p.has("auth") {
        files.push((
            "backend/tests/test_security.py".to_owned(),
            r#""""Password hashing and tokens."""
import pytest

from app import security

SECRET = "unit-test-secret"


def test_a_password_verifies_and_a_wrong_one_does_not():
    stored = security.hash_password("correct horse", iterations=1000)
    assert security.verify_password("correct horse", stored)
    assert not security.verify_password("wrong horse", stored)
    assert not security.verify_password("correct horse", "garbage")


def test_a_token_carries_its_claims():
    token = security.create_access_token(42, {"role": "admin"}, secret=SECRET, ttl=60)
    claims = security.decode_token(token, secret=SECRET)
    assert claims["sub"] == "42" and claims["role"] == "admin"


def test_a_tampered_or_foreign_token_is_refused():
    token = security.create_access_token(1, secret=SECRET, ttl=60)
    with pytest.raises(security.TokenError):
        security.decode_token(token, secret="another-secret")
    header, body, signature = token.split(".")
    with pytest.raises(security.TokenError):
        security.decode_token(header + "." + body + "x." + signature, secret=SECRET)


def test_an_expired_token_is_refused():
    token = security.create_access_token(1, secret=SECRET, ttl=60, now=1000)
    with pytest.raises(security.TokenError):
        security.decode_token(token, secret=SECRET, now=1061)
"#
            .to_owned(),
        ));
        count += 4;
    }
    if p.has("roles") {
        let table = p.entities.first().map_or("items", |e| e.table.as_str());
        files.push((
            "backend/tests/test_roles.py".to_owned(),
            format!(
                "\"\"\"What each role may do.\"\"\"\nfrom app.roles import has_permission\n\n\ndef test_admins_may_do_everything():\n    assert has_permission(\"admin\", \"{table}:delete\")\n\n\ndef test_members_read_and_write_but_do_not_delete():\n    assert has_permission(\"member\", \"{table}:write\")\n    assert not has_permission(\"member\", \"{table}:delete\")\n\n\ndef test_viewers_only_read_and_strangers_nothing():\n    assert has_permission(\"viewer\", \"{table}:read\")\n    assert not has_permission(\"viewer\", \"{table}:write\")\n    assert not has_permission(\"intruder\", \"{table}:read\")\n"
            ),
        ));
        count += 3;
    }
    if p.has("email") {
        files.push(("backend/tests/test_email.py".to_owned(), "\"\"\"Email templates and delivery.\"\"\"\nimport pytest\n\nfrom app import email\n\n\ndef test_templates_render_their_values():\n    subject, body = email.render(\"password_reset\", name=\"Ada\", link=\"https://x/r\", minutes=30)\n    assert email.APP_NAME in subject\n    assert \"Ada\" in body and \"https://x/r\" in body and \"30 minutes\" in body\n\n\ndef test_a_missing_value_is_an_error():\n    with pytest.raises(KeyError):\n        email.render(\"welcome\")\n\n\ndef test_without_smtp_mail_goes_to_the_outbox(monkeypatch):\n    monkeypatch.delenv(\"SMTP_HOST\", raising=False)\n    message = email.send(\"ada@example.com\", \"welcome\", name=\"Ada\")\n    assert message in email.OUTBOX and message[\"To\"] == \"ada@example.com\"\n".to_owned()));
        count += 3;
    }
    if p.has("payments") {
        files.push(("backend/tests/test_payments.py".to_owned(), "\"\"\"Stripe amounts and webhook signatures.\"\"\"\nimport json\n\nimport pytest\n\nfrom app import payments\n\nSECRET = \"whsec_test\"\nPAYLOAD = json.dumps({\"type\": \"checkout.session.completed\"}).encode()\n\n\ndef test_amounts_are_in_minor_units():\n    assert payments.to_minor_units(12.34) == 1234\n    assert payments.to_minor_units(500, \"jpy\") == 500\n    params = payments.checkout_session_params([(\"Pro plan\", 9.99, 2)], \"https://s\", \"https://c\")\n    assert params[\"line_items\"][0][\"price_data\"][\"unit_amount\"] == 999\n\n\ndef test_a_signed_webhook_is_accepted():\n    header = payments.sign(PAYLOAD, SECRET, 1700000000)\n    event = payments.verify_webhook(PAYLOAD, header, SECRET, now=1700000010)\n    assert event[\"type\"] == \"checkout.session.completed\"\n\n\ndef test_forged_or_replayed_webhooks_are_refused():\n    header = payments.sign(PAYLOAD, SECRET, 1700000000)\n    with pytest.raises(payments.SignatureError):\n        payments.verify_webhook(PAYLOAD + b\" \", header, SECRET, now=1700000010)\n    with pytest.raises(payments.SignatureError):\n        payments.verify_webhook(PAYLOAD, header, SECRET, now=1700009999)\n".to_owned()));
        count += 3;
    }
    if p.has("markdown") {
        files.push(("backend/tests/test_markdown.py".to_owned(), "\"\"\"Markdown rendering is safe.\"\"\"\nfrom app.markdown import render\n\n\ndef test_headings_emphasis_and_links_render():\n    html = render(\"# Title\\n\\nSome **bold** and *soft* [link](https://example.com).\")\n    assert \"<h1>Title</h1>\" in html\n    assert \"<strong>bold</strong>\" in html and \"<em>soft</em>\" in html\n    assert '<a href=\"https://example.com\">link</a>' in html\n\n\ndef test_html_and_script_links_are_neutralised():\n    html = render(\"<script>alert(1)</script> [x](javascript:alert(1))\")\n    assert \"<script>\" not in html and \"&lt;script&gt;\" in html\n    assert \"javascript:\" not in html\n".to_owned()));
        count += 2;
    }
    let summary = format!("{count} pytest unit test(s) that need only pytest");
    finish(
        ctx,
        "test_suite",
        files,
        summary,
        json!({"tests": count, "run": "cd backend && python -m pytest"}),
    )
}

pub fn integration(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut tests = String::from(
        r#""""The API end to end: FastAPI's test client on an in-memory SQLite database."""
import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")

os.environ["DATABASE_URL"] = "sqlite+pysqlite:///:memory:"
os.environ.setdefault("JWT_SECRET", "integration-test-secret")

from fastapi.testclient import TestClient  # noqa: E402

from app.database import Base, engine  # noqa: E402
from app.main import app  # noqa: E402


@pytest.fixture()
def client():
    Base.metadata.create_all(engine)
    with TestClient(app) as test_client:
        yield test_client
    Base.metadata.drop_all(engine)

"#,
    );
    if p.has("auth") {
        tests.push_str("\n@pytest.fixture()\ndef headers(client):\n    credentials = {\"email\": \"admin@example.com\", \"password\": \"long enough password\"}\n    assert client.post(\"/api/auth/register\", json=credentials).status_code == 201\n    token = client.post(\"/api/auth/login\", json=credentials).json()[\"access_token\"]\n    return {\"Authorization\": \"Bearer \" + token}\n\n\ndef test_writes_need_a_token(client):\n    response = client.post(\"/api/");
        tests.push_str(p.entities.first().map_or("items", |e| e.table.as_str()));
        tests.push_str("\", json={})\n    assert response.status_code == 401\n");
    } else {
        tests.push_str("\n@pytest.fixture()\ndef headers():\n    return {}\n");
    }
    tests.push_str("\n\ndef test_health(client):\n    assert client.get(\"/health\").json() == {\"status\": \"ok\"}\n");
    // Entities are created in dependency order, so references point at rows that exist.
    let mut created: Vec<&Entity> = Vec::new();
    let mut pending: Vec<&Entity> = p.entities.iter().collect();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|e| {
                e.fields.iter().all(|f| {
                    f.references
                        .as_ref()
                        .is_none_or(|t| created.iter().any(|c| &c.table == t) || t == &e.table)
                })
            })
            .unwrap_or(0);
        created.push(pending.remove(ready));
    }
    let mut setup = String::new();
    for entity in &created {
        let refs: Vec<String> = entity
            .fields
            .iter()
            .filter_map(|f| {
                let target = f.references.as_ref()?;
                let source = created.iter().find(|c| &c.table == target)?;
                (source.table != entity.table)
                    .then(|| format!("payload[\"{}\"] = ids[\"{}\"]", f.column, source.table))
            })
            .collect();
        let optional_self_refs = entity
            .fields
            .iter()
            .any(|f| f.references.as_ref() == Some(&entity.table) && f.required);
        if optional_self_refs {
            continue;
        }
        let _ = write!(
            setup,
            "    payload = {sample}\n{refs}    response = client.post(\"/api/{table}\", json=payload, headers=headers)\n    assert response.status_code == 201, response.text\n    ids[\"{table}\"] = response.json()[\"id\"]\n",
            sample = sample(entity, 1, false),
            refs = refs
                .iter()
                .map(|r| format!("    {r}\n"))
                .collect::<String>(),
            table = entity.table
        );
    }
    let _ = write!(
        tests,
        "\n\ndef create_all(client, headers):\n    \"\"\"One row of every entity; their ids by table.\"\"\"\n    ids = {{}}\n{setup}    return ids\n"
    );
    for entity in &created {
        let table = &entity.table;
        let _ = write!(
            tests,
            "\n\ndef test_{table}_crud(client, headers):\n    ids = create_all(client, headers)\n    item = client.get(\"/api/{table}/%d\" % ids[\"{table}\"], headers=headers)\n    assert item.status_code == 200\n    assert any(row[\"id\"] == ids[\"{table}\"] for row in client.get(\"/api/{table}\", headers=headers).json())\n    assert client.patch(\"/api/{table}/%d\" % ids[\"{table}\"], json={{}}, headers=headers).status_code == 200\n    assert client.delete(\"/api/{table}/%d\" % ids[\"{table}\"], headers=headers).status_code == 204\n    assert client.get(\"/api/{table}/%d\" % ids[\"{table}\"], headers=headers).status_code == 404\n"
        );
        if let Some(field) = entity.fields.iter().find(|f| f.references.is_none()) {
            let _ = write!(
                tests,
                "\n\ndef test_an_invalid_{singular}_is_refused(client, headers):\n    response = client.post(\"/api/{table}\", json=dict({sample}, {column}={wrong}), headers=headers)\n    assert response.status_code == 422\n",
                singular = entity.singular,
                sample = sample(entity, 2, false),
                column = field.column,
                wrong = field.kind.python_wrong()
            );
        }
    }
    let files = vec![
        ("backend/tests/conftest.py".to_owned(), CONFTEST.to_owned()),
        ("backend/tests/test_api.py".to_owned(), tests),
    ];
    finish(
        ctx,
        "integration_test",
        files,
        format!(
            "API tests for {} entit(ies) over FastAPI's test client",
            p.entities.len()
        ),
        json!({"needs": ["fastapi", "sqlalchemy", "httpx", "pytest"]}),
    )
}
