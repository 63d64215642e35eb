//! The test builders: test_suite writes pytest unit tests of the generated pure-Python modules
//! (validation, security, roles, email, payments, markdown), which need nothing but pytest;
//! integration_test writes API tests that drive the FastAPI app on an in-memory SQLite
//! database, skipped (by `pytest.importorskip`) where FastAPI, SQLAlchemy or httpx is absent.
//!
//! Both write tests only for what the workspace holds ([`Context::exists`]): a module another
//! builder did not write (a feature not asked for, a builder not run) gets no test importing it.

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

/// The module each feature's unit tests import, and the test file they go in.
const FEATURE_MODULES: &[(&str, &str)] = &[
    ("auth", "security"),
    ("roles", "roles"),
    ("email", "email"),
    ("payments", "payments"),
    ("markdown", "markdown"),
];

pub fn unit(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let present = |module: &str| ctx.exists(&format!("backend/app/{module}.py"));
    let tested: Vec<&str> = FEATURE_MODULES
        .iter()
        .filter(|(_, module)| present(module))
        .map(|(feature, _)| *feature)
        .collect();
    let validated = present("validation");
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
    if validated {
        files.push(("backend/tests/test_validation.py".to_owned(), validation));
    } else {
        count = 0;
    }
    if tested.contains(&"auth") {
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
    if tested.contains(&"roles") {
        let table = p.entities.first().map_or("items", |e| e.table.as_str());
        files.push((
            "backend/tests/test_roles.py".to_owned(),
            format!(
                "\"\"\"What each role may do.\"\"\"\nfrom app.roles import has_permission\n\n\ndef test_admins_may_do_everything():\n    assert has_permission(\"admin\", \"{table}:delete\")\n\n\ndef test_members_read_and_write_but_do_not_delete():\n    assert has_permission(\"member\", \"{table}:write\")\n    assert not has_permission(\"member\", \"{table}:delete\")\n\n\ndef test_viewers_only_read_and_strangers_nothing():\n    assert has_permission(\"viewer\", \"{table}:read\")\n    assert not has_permission(\"viewer\", \"{table}:write\")\n    assert not has_permission(\"intruder\", \"{table}:read\")\n"
            ),
        ));
        count += 3;
    }
    if tested.contains(&"email") {
        files.push(("backend/tests/test_email.py".to_owned(), "\"\"\"Email templates and delivery.\"\"\"\nimport pytest\n\nfrom app import email\n\n\ndef test_templates_render_their_values():\n    subject, body = email.render(\"password_reset\", name=\"Ada\", link=\"https://x/r\", minutes=30)\n    assert email.APP_NAME in subject\n    assert \"Ada\" in body and \"https://x/r\" in body and \"30 minutes\" in body\n\n\ndef test_a_missing_value_is_an_error():\n    with pytest.raises(KeyError):\n        email.render(\"welcome\")\n\n\ndef test_without_smtp_mail_goes_to_the_outbox(monkeypatch):\n    monkeypatch.delenv(\"SMTP_HOST\", raising=False)\n    message = email.send(\"ada@example.com\", \"welcome\", name=\"Ada\")\n    assert message in email.OUTBOX and message[\"To\"] == \"ada@example.com\"\n".to_owned()));
        count += 3;
    }
    if tested.contains(&"payments") {
        files.push(("backend/tests/test_payments.py".to_owned(), "\"\"\"Stripe amounts and webhook signatures.\"\"\"\nimport json\n\nimport pytest\n\nfrom app import payments\n\nSECRET = \"whsec_test\"\nPAYLOAD = json.dumps({\"type\": \"checkout.session.completed\"}).encode()\n\n\ndef test_amounts_are_in_minor_units():\n    assert payments.to_minor_units(12.34) == 1234\n    assert payments.to_minor_units(500, \"jpy\") == 500\n    params = payments.checkout_session_params([(\"Pro plan\", 9.99, 2)], \"https://s\", \"https://c\")\n    assert params[\"line_items\"][0][\"price_data\"][\"unit_amount\"] == 999\n\n\ndef test_a_signed_webhook_is_accepted():\n    header = payments.sign(PAYLOAD, SECRET, 1700000000)\n    event = payments.verify_webhook(PAYLOAD, header, SECRET, now=1700000010)\n    assert event[\"type\"] == \"checkout.session.completed\"\n\n\ndef test_forged_or_replayed_webhooks_are_refused():\n    header = payments.sign(PAYLOAD, SECRET, 1700000000)\n    with pytest.raises(payments.SignatureError):\n        payments.verify_webhook(PAYLOAD + b\" \", header, SECRET, now=1700000010)\n    with pytest.raises(payments.SignatureError):\n        payments.verify_webhook(PAYLOAD, header, SECRET, now=1700009999)\n".to_owned()));
        count += 3;
    }
    if tested.contains(&"markdown") {
        files.push(("backend/tests/test_markdown.py".to_owned(), "\"\"\"Markdown rendering is safe.\"\"\"\nfrom app.markdown import render\n\n\ndef test_headings_emphasis_and_links_render():\n    html = render(\"# Title\\n\\nSome **bold** and *soft* [link](https://example.com).\")\n    assert \"<h1>Title</h1>\" in html\n    assert \"<strong>bold</strong>\" in html and \"<em>soft</em>\" in html\n    assert '<a href=\"https://example.com\">link</a>' in html\n\n\ndef test_html_and_script_links_are_neutralised():\n    html = render(\"<script>alert(1)</script> [x](javascript:alert(1))\")\n    assert \"<script>\" not in html and \"&lt;script&gt;\" in html\n    assert \"javascript:\" not in html\n".to_owned()));
        count += 2;
    }
    let summary = format!("{count} pytest unit test(s) that need only pytest");
    finish(
        ctx,
        "test_suite",
        files,
        summary,
        json!({"tests": count, "tested_features": tested, "tested_entities": if validated { p.entities.len() } else { 0 }, "run": "cd backend && python -m pytest"}),
    )
}

/// Entities in an order that creates every row a required reference needs before it: the
/// input refuses circles of required references, so one always comes next.
fn creation_order(entities: Vec<&Entity>) -> Vec<&Entity> {
    let mut created: Vec<&Entity> = Vec::new();
    let mut pending = entities;
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|e| {
                e.fields.iter().filter(|f| f.required).all(|f| {
                    f.references
                        .as_ref()
                        .is_none_or(|t| created.iter().any(|c| &c.table == t))
                })
            })
            .unwrap_or(0);
        created.push(pending.remove(ready));
    }
    created
}

pub fn integration(ctx: &mut Context, input: &Value) -> Result<Value, AgentError> {
    let p = Project::from_input(input)?;
    let mut files = vec![("backend/tests/conftest.py".to_owned(), CONFTEST.to_owned())];
    if !ctx.exists("backend/app/main.py") {
        return finish(
            ctx,
            "integration_test",
            files,
            "no API tests: the workspace has no backend/app/main.py".to_owned(),
            json!({"tests": 0, "tested_entities": 0}),
        );
    }
    let served: Vec<&Entity> = p
        .entities
        .iter()
        .filter(|e| ctx.exists(&format!("backend/app/routers/{}.py", e.table)))
        .collect();
    let mut count = 1;
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


def test_health(client):
    assert client.get("/health").json() == {"status": "ok"}
"#,
    );
    if ctx.exists("backend/app/routers/auth.py") {
        tests.push_str("\n\n@pytest.fixture()\ndef headers(client):\n    credentials = {\"email\": \"admin@example.com\", \"password\": \"long enough password\"}\n    assert client.post(\"/api/auth/register\", json=credentials).status_code == 201\n    token = client.post(\"/api/auth/login\", json=credentials).json()[\"access_token\"]\n    return {\"Authorization\": \"Bearer \" + token}\n\n\ndef test_a_wrong_password_gets_no_token(client):\n    credentials = {\"email\": \"ada@example.com\", \"password\": \"long enough password\"}\n    assert client.post(\"/api/auth/register\", json=credentials).status_code == 201\n    wrong = dict(credentials, password=\"not the password\")\n    assert client.post(\"/api/auth/login\", json=wrong).status_code == 401\n");
        count += 1;
        if let Some(first) = served.first() {
            let _ = write!(
                tests,
                "\n\ndef test_writes_need_a_token(client):\n    assert client.post(\"/api/{}\", json={{}}).status_code == 401\n",
                first.table
            );
            count += 1;
        }
    } else {
        tests.push_str("\n\n@pytest.fixture()\ndef headers():\n    return {}\n");
    }
    if ctx.exists("backend/app/routers/payments.py") {
        tests.push_str("\n\ndef test_an_unsigned_webhook_is_refused(client, monkeypatch):\n    monkeypatch.setenv(\"STRIPE_WEBHOOK_SECRET\", \"whsec_test\")\n    response = client.post(\"/api/payments/webhook\", content=b\"{}\", headers={\"Stripe-Signature\": \"t=1,v1=forged\"})\n    assert response.status_code == 400\n");
        count += 1;
    }
    let created = creation_order(served);
    let mut setup = String::new();
    for entity in &created {
        let refs: String = entity
            .fields
            .iter()
            .filter_map(|f| {
                let target = f.references.as_ref()?;
                (target != &entity.table && created.iter().any(|c| &c.table == target))
                    .then(|| format!("    if \"{target}\" in ids:\n        payload[\"{}\"] = ids[\"{target}\"]\n", f.column))
            })
            .collect();
        let _ = write!(
            setup,
            "    payload = {sample}\n{refs}    response = client.post(\"/api/{table}\", json=payload, headers=headers)\n    assert response.status_code == 201, response.text\n    ids[\"{table}\"] = response.json()[\"id\"]\n",
            sample = sample(entity, 1, false),
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
            "\n\ndef test_{table}_crud(client, headers):\n    ids = create_all(client, headers)\n    url = \"/api/{table}/%d\" % ids[\"{table}\"]\n    assert client.get(url, headers=headers).status_code == 200\n    assert any(row[\"id\"] == ids[\"{table}\"] for row in client.get(\"/api/{table}\", headers=headers).json())\n    assert client.patch(url, json={{}}, headers=headers).status_code == 200\n    assert client.delete(url, headers=headers).status_code == 204\n    assert client.get(url, headers=headers).status_code == 404\n\n\ndef test_{table}_pages_and_filters(client, headers):\n    ids = create_all(client, headers)\n    page = client.get(\"/api/{table}?skip=0&limit=1\", headers=headers)\n    assert page.status_code == 200 and len(page.json()) == 1\n    assert client.get(\"/api/{table}?id=%d\" % ids[\"{table}\"], headers=headers).status_code == 422\n    assert client.get(\"/api/{table}?limit=0\", headers=headers).status_code == 422\n"
        );
        count += 2;
        if let Some(field) = entity.fields.iter().find(|f| f.references.is_none()) {
            let _ = write!(
                tests,
                "\n\ndef test_an_invalid_{singular}_is_refused(client, headers):\n    payload = {sample}\n    payload[\"{column}\"] = {wrong}\n    response = client.post(\"/api/{table}\", json=payload, headers=headers)\n    assert response.status_code == 422\n",
                singular = entity.singular,
                sample = sample(entity, 2, false),
                column = field.column,
                wrong = field.kind.python_wrong()
            );
            count += 1;
        }
    }
    files.push(("backend/tests/test_api.py".to_owned(), tests));
    let entities = created.len();
    finish(
        ctx,
        "integration_test",
        files,
        format!("{count} API test(s) for {entities} entit(ies) over FastAPI's test client"),
        json!({"tests": count, "tested_entities": entities, "needs": ["fastapi", "sqlalchemy", "httpx", "pytest"]}),
    )
}
