"""Terraform (infra/) against the code: fails when they disagree.

Reads the HCL with python-hcl2 and the Python with `ast`, so nothing is imported from infra and
nothing is deployed. What it holds the two to:
- every function in `functions/` is deployed, with its decorated entry point, the trigger the
  local stack gives it, and no deployed function lacks code;
- the topics are the stack's, each with a dead-letter topic; each topic-triggered function has
  a push subscription with a dead-letter policy; what a function's dependencies publish to
  (read from `adapters/wiring.py`) it may publish to;
- every secret name the code reads (per-tenant prefixes in `services/tenants.py`, `*_SECRET`
  constants) is declared, and functions only list secrets that exist;
- every Firestore query that needs a composite index has one;
- every environment variable the deployed code reads is set, or emulator-only; every
  `UPSTREAM_*` variable set is a setting;
- the scheduled runs publish what `DetectorRun` accepts;
- each function's gunicorn serves as many requests at once as Cloud Run sends it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

from upstream.deploy.package import _package_files
from upstream.events import DetectorRun
from upstream.services.dispatch_alerts import DigestRequest, SummaryRequest
from upstream.services.monthly_notice import MonthlyRequest
from upstream.settings import Settings
from upstream.stack.topology import FUNCTIONS, TOPICS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PACKAGE = ROOT / "shared" / "upstream"
# Read only when running against the emulators (the client libraries honour them).
EMULATOR_ONLY = {"FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                 "FIREBASE_AUTH_EMULATOR_HOST"}
RANGE_OPS = {"<", "<=", ">", ">=", "!=", "not-in"}


def _plain(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels: drop them."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@cache
def terraform() -> dict[str, Any]:
    merged: dict[str, Any] = {"locals": {}, "resource": {}, "variable": {}, "output": {}}
    for path in sorted(INFRA.glob("*.tf")):
        with open(path) as handle:
            data = _plain(hcl2.load(handle))
        for block in data.get("locals", []):
            merged["locals"].update(block)
        for block in data.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for key in ("variable", "output"):
            for block in data.get(key, []):
                merged[key].update(block)
    return merged


def functions_tf() -> dict[str, dict[str, Any]]:
    return dict(terraform()["locals"]["functions"])


def resource(kind: str, name: str) -> dict[str, Any]:
    return dict(terraform()["resource"][kind][name])


def entry_point(main: Path) -> str:
    tree = ast.parse(main.read_text())
    names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)
             and any("functions_framework" in ast.unparse(d) for d in node.decorator_list)]
    assert len(names) == 1, f"{main}: one functions_framework entry point expected"
    return names[0]


def test_every_function_is_deployed_with_its_entry_point_and_trigger() -> None:
    code = {p.parent.name: entry_point(p) for p in sorted((ROOT / "functions").glob("*/main.py"))}
    deployed = functions_tf()
    assert set(deployed) == set(code), "functions/ and infra/functions.tf list different functions"
    assert all(name == entry for name, entry in code.items()), "entry point ≠ directory name"
    function = resource("google_cloudfunctions2_function", "function")
    assert function["build_config"][0]["entry_point"] == "${each.key}"
    assert function["build_config"][0]["runtime"] == "python312"
    stack = {spec.name: spec.trigger for spec in FUNCTIONS}
    assert {name: f["trigger"] for name, f in deployed.items()} == stack


def test_topics_have_dead_letters_and_consumers_have_dead_lettered_subscriptions() -> None:
    topics = terraform()["locals"]["topics"]
    assert set(topics) == set(TOPICS)
    settings = {f: v.default for f, v in Settings.model_fields.items() if f.endswith("_topic")}
    assert set(settings.values()) <= set(topics), "a topic the code publishes to is not declared"
    assert resource("google_pubsub_topic", "dead_letter")["for_each"] == "${toset(local.topics)}"
    push = resource("google_pubsub_subscription", "push")
    assert push["for_each"] == "${local.topic_functions}"
    assert push["dead_letter_policy"][0]["dead_letter_topic"] == (
        "${google_pubsub_topic.dead_letter[each.value].id}")
    assert "retry_policy" in push and "ack_deadline_seconds" in push
    hold = resource("google_pubsub_subscription", "dead_letter_hold")
    assert hold["for_each"] == "${toset(local.topics)}"


def _wiring_topics() -> dict[str, set[str]]:
    """deps factory in adapters/wiring.py → the settings topics it hands to its use-case."""
    tree = ast.parse((PACKAGE / "adapters" / "wiring.py").read_text())
    defaults = {f: v.default for f, v in Settings.model_fields.items() if f.endswith("_topic")}
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = {defaults[a.attr] for a in ast.walk(node)
                                if isinstance(a, ast.Attribute) and a.attr in defaults}
    return found


def _deps_factories(main: Path) -> list[str]:
    tree = ast.parse(main.read_text())
    names = [alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             and node.module == "upstream.adapters.wiring" for alias in node.names]
    assert names, f"{main}: a wiring factory expected"
    return names


def test_each_function_may_publish_where_its_code_publishes() -> None:
    """A topic-triggered function dead-letters undecodable messages of its own topic
    (`<topic>-dlq`); any other topic its dependencies name it publishes to."""
    wiring = _wiring_topics()
    declared = set(TOPICS) | {f"{t}-dlq" for t in TOPICS}
    for name, spec in functions_tf().items():
        publishes = set(spec["publishes"])
        assert publishes <= declared, f"{name} publishes to an undeclared topic"
        own = spec["trigger"].removeprefix("topic:") if spec["trigger"].startswith(
            "topic:") else None
        needed = {f"{t}-dlq" if t == own else t
                  for factory in _deps_factories(ROOT / "functions" / name / "main.py")
                  for t in wiring[factory]}
        assert needed <= publishes, f"{name} needs {sorted(needed - publishes)}"


def _tenant_secret_prefixes() -> set[str]:
    tree = ast.parse((PACKAGE / "services" / "tenants.py").read_text())
    prefixes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.JoinedStr):
            head = node.value.values[0]
            if isinstance(head, ast.Constant) and str(head.value).endswith("-"):
                prefixes.add(str(head.value).removesuffix("-"))
    return prefixes


def _global_secrets() -> set[str]:
    names = set()
    for name, path in _package_files(PACKAGE):
        for node in ast.walk(ast.parse(path.read_text())) if name.endswith(".py") else ():
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and any(isinstance(t, ast.Name) and t.id.endswith("_SECRET")
                            for t in node.targets):
                names.add(str(node.value.value))
    return names


def test_every_secret_the_code_reads_is_declared() -> None:
    local = terraform()["locals"]
    prefixes, globals_ = _tenant_secret_prefixes(), _global_secrets()
    assert {"patient-hash-key", "webhook-secret", "athena-hub-secret",
            "athena-oauth"} <= prefixes  # the scan itself works
    assert set(local["tenant_secret_prefixes"]) == prefixes
    assert set(local["global_secrets"]) == globals_
    for name, spec in functions_tf().items():
        assert set(spec["secrets"]) <= prefixes | globals_, f"{name} lists an unknown secret"


def _query_chains() -> list[tuple[str, set[str], bool]]:
    """(file, fields, needs a composite index) for each Firestore query chain in adapters."""
    chains = []
    for path in sorted((PACKAGE / "adapters").glob("*.py")):
        tree = ast.parse(path.read_text())
        inner = {id(n.func.value) for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in inner:
                continue
            fields, ranged, ordered = set(), False, set()
            current: Any = node
            while isinstance(current, ast.Call) and isinstance(current.func, ast.Attribute):
                method = current.func.attr
                if method == "where":
                    for kw in current.keywords:
                        call = kw.value
                        if not isinstance(call, ast.Call) or len(call.args) < 2:
                            continue
                        field, op = call.args[0], call.args[1]
                        if isinstance(field, ast.Constant) and isinstance(op, ast.Constant):
                            fields.add(str(field.value))
                            ranged |= op.value in RANGE_OPS
                elif method == "order_by" and current.args and isinstance(
                        current.args[0], ast.Constant):
                    ordered.add(str(current.args[0].value))
                current = current.func.value
            every = fields | ordered
            if every:
                needs = len(every) >= 2 and (ranged or bool(ordered))
                chains.append((path.name, every, needs))
    return chains


def test_every_query_that_needs_a_composite_index_has_one() -> None:
    indexes = [{f["field_path"] for f in body["fields"]} for body in
               terraform()["resource"].get("google_firestore_index", {}).values()]
    chains = _query_chains()
    assert any(fields == {"payer", "outcome", "decided_date"} for _, fields, _ in chains)
    for file, fields, needs in chains:
        if needs:
            assert any(fields <= index for index in indexes), f"{file}: no index for {fields}"
    ttl = resource("google_firestore_field", "idempotency_ttl")
    assert (ttl["collection"], ttl["field"]) == ("idempotency", "expire_at")


def _env_reads() -> set[str]:
    found = set()
    for name, path in _package_files(PACKAGE):
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                    "os.environ.get", "os.getenv") and node.args and isinstance(
                    node.args[0], ast.Constant):
                found.add(str(node.args[0].value))
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                    and isinstance(node.slice, ast.Constant):
                found.add(str(node.slice.value))
    return found


def _setting_env_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"UPSTREAM_{field.upper()}")
        alias = info.validation_alias
        names |= set(getattr(alias, "choices", []) or [])
    return names


def test_every_environment_variable_the_code_reads_is_set() -> None:
    common = terraform()["locals"]["common_env"]
    assert common["UPSTREAM_SECRETS_BACKEND"] == "gcp", "production reads Secret Manager"
    assert common["UPSTREAM_PROJECT"] == "${var.project}"
    settable = _setting_env_names()
    for name, spec in functions_tf().items():
        env = {**common, **spec["env"]}
        unknown = {k for k in env if k.startswith("UPSTREAM_")} - settable
        assert not unknown, f"{name} sets {unknown}, which no setting reads"
        missing = _env_reads() - set(env) - EMULATOR_ONLY
        assert not missing, f"{name} runs code reading {missing}, not set"
    assert functions_tf()["ehr_fetcher"]["env"]["UPSTREAM_ATHENA_BASE_URL"] == (
        "${var.athena_base_url}")


def test_each_function_serves_as_many_requests_at_once_as_cloud_run_sends() -> None:
    """functions-framework's gunicorn runs THREADS requests at once, by default 4 per core it
    sees: below the concurrency Cloud Run sends, the rest would queue unseen by the
    autoscaler. The webhooks' 8 is what `make bench-webhook` measures (8 threads here)."""
    service = resource("google_cloudfunctions2_function", "function")["service_config"][0]
    assert service["max_instance_request_concurrency"] == "${each.value.concurrency}"
    assert "THREADS = tostring(each.value.concurrency)" in service["environment_variables"]
    for name, spec in functions_tf().items():
        assert "THREADS" not in spec["env"], f"{name} overrides THREADS apart from concurrency"
        assert 1 <= int(spec["concurrency"]) <= 8, name
    assert {functions_tf()[name]["concurrency"] for name in ("athena_webhook", "ehr_webhook")} \
        == {8}


def test_scheduled_messages_are_what_their_consumers_accept() -> None:
    """Each job's payload validates as the model its topic's function decodes."""
    jobs = terraform()["locals"]["scheduled"]
    models = {"detector-runs": DetectorRun,
              "alerts": (DigestRequest, SummaryRequest, MonthlyRequest)}
    kinds = set()
    for name, job in jobs.items():
        data = dict(job["data"])
        assert job["topic"] in models, f"{name} publishes to {job['topic']}"
        choices = models[job["topic"]]
        for model in choices if isinstance(choices, tuple) else (choices,):
            try:
                model.model_validate(data)
                kinds.add((job["topic"], model.__name__, job["schedule"]))
                break
            except ValueError:
                continue
        else:
            raise AssertionError(f"{name}: {data} is accepted by no consumer")
    assert {k[1] for k in kinds} == {"DetectorRun", "DigestRequest", "SummaryRequest",
                                     "MonthlyRequest"}
    assert ("detector-runs", "DetectorRun", "0 6 * * *") in kinds  # daily 06:00 UTC
    job = resource("google_cloud_scheduler_job", "job")
    assert job["pubsub_target"][0]["data"] == "${base64encode(jsonencode(each.value.data))}"


def test_environments_share_the_code_and_name_their_state() -> None:
    envs = INFRA / "environments"
    for env in ("staging", "prod"):
        tfvars = _plain(hcl2.load(open(envs / f"{env}.tfvars")))
        backend = _plain(hcl2.load(open(envs / f"{env}.backend.hcl")))
        assert tfvars["environment"] == env and backend["prefix"].endswith(env)
        assert backend["bucket"] and tfvars["project"]


def test_cloudbuild_tests_packages_and_plans_or_applies_each_environment() -> None:
    import yaml

    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = {step["id"]: step for step in build["steps"]}
    assert list(steps) == ["test", "audit-deps", "package", "terraform"]
    assert "make test" in steps["test"]["args"][-1]
    assert "make audit-deps" in " ".join(steps["audit-deps"]["args"])
    assert "make package" in " ".join(steps["package"]["args"])
    script = steps["terraform"]["args"][-1]
    assert "-backend-config=environments/${_ENV}.backend.hcl" in script
    assert "terraform plan" in script and "terraform apply -auto-approve" in script
    assert build["substitutions"]["_ENV"] in ("staging", "prod")
    assert "upstream-deployer" in build["serviceAccount"]
