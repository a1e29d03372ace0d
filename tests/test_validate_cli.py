"""``mlopsctl validate`` through the CLI: output formats, exit codes, selection, suppressions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from mlopsctl.checks import catalog, validate
from mlopsctl.cli.app import app

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["validate", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def bad_repo(tmp_path: Path) -> Path:
    """A repository with a root-running container and a literal password."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "MLV201" / "fail", root)
    (root / "config.yaml").write_text("db: postgresql://app:s3cr@t@db:5432/app\n")
    return root


def test_clean_repository_exits_0(tmp_path: Path) -> None:
    code, out, _ = invoke(str(FIXTURES / "MLV101" / "pass"), "--no-color")
    assert code == 0
    assert out.strip().startswith("ok:")


def test_findings_exit_1_with_path_line_id_message_remediation(bad_repo: Path) -> None:
    code, out, _ = invoke(str(bad_repo), "--no-color")
    assert code == 1
    lines = [line for line in out.splitlines() if "  MLV201  " in line]
    assert len(lines) == 1
    where, check, message, *_ = lines[0].split("  ")
    assert where == "k8s/deploy.yaml:20"  # the pod's securityContext lacks runAsNonRoot
    assert check == "MLV201"
    assert "runAsNonRoot is not true" in message
    assert lines[0].endswith(
        "(Set securityContext.runAsNonRoot: true (and a non-zero runAsUser) "
        "on the pod or container.)"
    )
    # grouped by file: a header line with the file name precedes its findings
    assert out.splitlines()[out.splitlines().index(lines[0]) - 1].startswith("k8s/deploy.yaml")
    # the password containing '@' is found on its line
    assert any(line.startswith("config.yaml:1  MLV211  ") for line in out.splitlines())


def test_color_only_when_asked(bad_repo: Path) -> None:
    _, plain, _ = invoke(str(bad_repo), "--no-color")
    _, colored, _ = invoke(str(bad_repo), "--color")
    assert "\x1b[" not in plain
    assert "\x1b[" in colored


def test_json_format(bad_repo: Path) -> None:
    code, out, _ = invoke(str(bad_repo), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    checks = {(f["check"], f["path"], f["line"]) for f in data["findings"]}
    assert ("MLV201", "k8s/deploy.yaml", 20) in checks
    assert ("MLV211", "config.yaml", 1) in checks
    f = data["findings"][0]
    assert set(f) == {"check", "name", "severity", "path", "line", "message", "remediation"}


# The official SARIF 2.1.0 schema, shipped with the tests (see tests/fixtures/sarif/README.md).
SARIF_SCHEMA = Path(__file__).parent / "fixtures" / "sarif" / "sarif-2.1.0-rtm.5.json"


def _sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_the_sarif_schema_catches_what_it_should() -> None:
    """The shipped schema is the real one: it rejects a log that breaks SARIF's rules."""
    validator = _sarif_validator()
    good = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}}]}
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({**good, "version": "2.0.0"}))
    bad_level = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "x"}},
                "results": [{"message": {"text": "m"}, "level": "fatal"}],
            }
        ],
    }
    assert list(validator.iter_errors(bad_level))


def test_sarif_format(bad_repo: Path) -> None:
    code, out, _ = invoke(str(bad_repo), "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    errors = [e.message for e in _sarif_validator().iter_errors(log)]
    assert errors == []
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.id for c in catalog()]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert (bad_repo / uri).is_file()
    assert any(
        r["ruleId"] == "MLV201"
        and r["locations"][0]["physicalLocation"]["region"]["startLine"] == 20
        for r in run["results"]
    )


def test_select_and_ignore(bad_repo: Path) -> None:
    code, out, _ = invoke(str(bad_repo), "--format", "json", "--select", "MLV201")
    assert code == 1
    assert {f["check"] for f in json.loads(out)["findings"]} == {"MLV201"}
    code, out, _ = invoke(str(bad_repo), "--format", "json", "--ignore", "MLV201,literal-secret")
    found = {f["check"] for f in json.loads(out)["findings"]}
    assert "MLV201" not in found and "MLV211" not in found
    code, out, _ = invoke(str(bad_repo), "--format", "json", "--select", "MLV2")
    assert {f["check"] for f in json.loads(out)["findings"]} == {"MLV201", "MLV211"}


def test_unknown_check_is_usage_error(bad_repo: Path) -> None:
    code, _, err = invoke(str(bad_repo), "--select", "MLV999")
    assert code == 2
    assert "MLV999" in err and "--list-checks" in err


def test_missing_directory_is_usage_error(tmp_path: Path) -> None:
    code, _, _ = invoke(str(tmp_path / "nope"))
    assert code == 2


def test_bad_crd_file_is_usage_error(tmp_path: Path) -> None:
    crd = tmp_path / "x.yaml"
    crd.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, err = invoke(str(FIXTURES / "MLV101" / "pass"), "--crd", str(crd))
    assert code == 2
    assert "CustomResourceDefinition" in err


def test_list_checks() -> None:
    result = runner.invoke(app, ["validate", "--list-checks"])
    assert result.exit_code == 0
    ids = [line.split()[0] for line in result.stdout.splitlines()]
    assert ids == [c.id for c in catalog()]


def test_suppression_with_reason_silences_the_file(bad_repo: Path) -> None:
    deploy = bad_repo / "k8s" / "deploy.yaml"
    deploy.write_text(
        "# mlopsctl: ignore[MLV201] image runs as UID 1000 by its own USER line\n"
        + deploy.read_text()
    )
    report = validate(bad_repo, select=["MLV201", "MLV004"])
    assert report.findings == []
    assert report.suppressed == 1


def test_suppression_without_reason_is_a_finding_and_suppresses_nothing(bad_repo: Path) -> None:
    deploy = bad_repo / "k8s" / "deploy.yaml"
    deploy.write_text("# mlopsctl: ignore[MLV201]\n" + deploy.read_text())
    report = validate(bad_repo, select=["MLV201", "MLV004"])
    assert {(f.check, f.line) for f in report.findings} == {("MLV004", 1), ("MLV201", 21)}


def test_repository_not_generated_by_mlopsctl_skips_design_checks_with_notes(
    tmp_path: Path,
) -> None:
    shutil.copytree(FIXTURES / "MLV101" / "pass", tmp_path / "r")
    report = validate(tmp_path / "r")
    assert report.ok
    noted = {n.check for n in report.notes}
    assert {"MLV210", "MLV301", "MLV401"} <= noted


def test_pre_commit_hook_manifest() -> None:
    import yaml

    hooks = yaml.safe_load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "mlopsctl-validate"
    assert hook["entry"] == "mlopsctl validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
    known = {
        "id", "name", "entry", "language", "files", "exclude", "types", "types_or",
        "exclude_types", "always_run", "fail_fast", "verbose", "pass_filenames",
        "require_serial", "description", "language_version", "minimum_pre_commit_version",
        "args", "stages", "additional_dependencies",
    }  # fmt: skip
    assert set(hook) <= known


def test_explain_a_check() -> None:
    result = runner.invoke(app, ["validate", "--explain", "no-privilege-escalation"])
    assert result.exit_code == 0
    assert result.stdout.startswith("MLV203 no-privilege-escalation (policy, error)")
    assert "allowPrivilegeEscalation: false" in result.stdout
    assert "https://kubernetes.io/docs/concepts/security/pod-security-standards/" in result.stdout
    bad = runner.invoke(app, ["validate", "--explain", "MLV999"])
    assert bad.exit_code == 2
    assert "--explain MLV999" in bad.stderr


def test_checks_list_and_explain_beside_rules_list_and_explain() -> None:
    listed = runner.invoke(app, ["checks", "list"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [s.id for s in catalog()]
    policy = runner.invoke(app, ["checks", "list", "--category", "policy", "--format", "json"])
    assert {c["category"] for c in json.loads(policy.stdout)} == {"policy"}
    unknown = runner.invoke(app, ["checks", "list", "--category", "nope"])
    assert unknown.exit_code == 2 and "unknown category 'nope'" in unknown.stderr

    for wanted in ("MLV203", "mlv203", "no-privilege-escalation"):
        explained = runner.invoke(app, ["checks", "explain", wanted])
        assert explained.exit_code == 0
        assert explained.stdout.startswith("MLV203 no-privilege-escalation (policy, error)")
    as_json = runner.invoke(app, ["checks", "explain", "MLV107", "--format", "json"])
    assert json.loads(as_json.stdout)["name"] == "kfp-pipeline-compiles"
    missing = runner.invoke(app, ["checks", "explain", "MLV999"])
    assert missing.exit_code == 2
    assert "no check 'MLV999'" in missing.stderr and "mlopsctl checks list" in missing.stderr


def test_keys_that_are_not_strings_are_read_as_json_reads_them(tmp_path: Path) -> None:
    """YAML ``1:`` and ``true:`` keys become the JSON keys "1" and "true" (as kubectl and CI
    systems read them): a schema finding, not a crash."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "name: ci\non: push\njobs:\n  1:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: make test\n"
    )
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
        "  labels:\n    true: x\ndata:\n  1: one\n"
    )
    code, out, _ = invoke(str(tmp_path), "--no-color", "--select", "MLV101,MLV106")
    assert code == 1, out
    assert "jobs: key '1' does not match '^[_a-zA-Z][a-zA-Z0-9_-]*$'" in out
    assert "cm.yaml" not in out  # string keys "true" and "1": a valid ConfigMap
