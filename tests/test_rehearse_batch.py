"""Batch scoring on real storage, and Spark for data that does not fit one pod.

Fast tests: the generated batch CronJob, Spark image and ScheduledSparkApplication (what the
rehearsal found: the CronJob read an empty ``emptyDir`` and lost its output, the Spark image had
no S3A connector, 5000 GB ran in local mode in one pod), the sizing from the data volume and the
schema check of ``mlopsctl validate``. Slow tests (root, PostgreSQL, moto, Java): the ``batch``
component of the rehearsal for the CronJob profile and the Spark profile, each after the
tracking server and the entry points that register the champion.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mlopsctl.api import generate, validate
from mlopsctl.checks._crd import build_shipped, load_crd_file, root_schema
from mlopsctl.checks._validation import SHIPPED
from mlopsctl.names import resource_names
from mlopsctl.rehearse import Handoff, Rehearsal, batch, images, manifests
from mlopsctl.rehearse.runner import run_components, session
from mlopsctl.rehearse.stage import Stage
from mlopsctl.render import versions
from mlopsctl.spark import spark_sizing

from .conftest import explain, make_requirements

UPSTREAM = Path(__file__).resolve().parent / "fixtures" / "upstream" / "spark-operator"
CRON = "scored"
SPARK = "sparked"


def _generate(root: Path, name: str, gb: float) -> Path:
    generate(
        make_requirements(
            project_name=name,
            deployment_target="batch",
            scale_requirements={"data_volume_gb": gb},
        ),
        root / name,
    )
    return root / name


@pytest.fixture(scope="module")
def cron_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("batch"), CRON, 99)


@pytest.fixture(scope="module")
def spark_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("spark"), SPARK, 5000)


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


# --- the CronJob ---------------------------------------------------------------------------------


def test_batch_cronjob_reads_and_writes_the_object_store_not_a_pod_volume(
    cron_project: Path,
) -> None:
    """It read /data/input.csv from an emptyDir nothing fills and wrote its output there."""
    names = resource_names(CRON)
    container = manifests.container(cron_project / batch.CRONJOB, names["batch"], "score")
    argv = container.expanded(container.env)
    assert argv[:2] == ["python", "src/batch_score.py"]
    assert argv[2:] == [
        f"{names['artifact_root']}/batch/input/",
        f"{names['artifact_root']}/batch/output/",
    ]
    assert container.mounts == ["/tmp"]  # nothing but scratch space in the pod
    (doc,) = _docs(cron_project / batch.CRONJOB)
    volumes = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert [v["name"] for v in volumes] == ["tmp"]


def test_batch_cronjob_gets_the_endpoint_and_keys_of_the_tracking_servers_store(
    cron_project: Path,
) -> None:
    names = resource_names(CRON)
    job = manifests.container(cron_project / batch.CRONJOB, names["batch"], "score")
    server = manifests.container(
        cron_project / "k8s/tracking-server.yaml", names["mlflow"], "mlflow"
    )
    for variable in ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert job.secret_env[variable] == server.secret_env[variable]
    assert job.env["MLFLOW_TRACKING_URI"] == names["tracking_uri"]


def test_the_batch_image_installs_the_s3_client_batch_scoring_uses(cron_project: Path) -> None:
    pins = (cron_project / "requirements.txt").read_text().split()
    assert f"boto3=={versions()['packages']['boto3']}" in pins
    assert "import boto3" in (cron_project / "src/batch_score.py").read_text()


def test_batch_score_is_generated_without_the_cronjob_for_the_spark_profile(
    spark_project: Path,
) -> None:
    assert not (spark_project / batch.CRONJOB).exists()
    assert (spark_project / batch.SPARK_APPLICATION).is_file()


# --- Spark ---------------------------------------------------------------------------------------


def test_5000_gb_runs_on_executors_not_in_local_mode_in_one_pod(spark_project: Path) -> None:
    for manifest in (spark_project / "k8s").glob("*.yaml"):
        assert "local[" not in manifest.read_text(), manifest.name
    app = batch.spark_application(spark_project / batch.SPARK_APPLICATION)
    assert app.kind == "ScheduledSparkApplication"
    ok, detail = batch.distributed(app)
    assert ok, detail
    sizing = spark_sizing(5000)
    assert app.role("executor")["instances"] == sizing["executor_instances"] == 100
    assert app.role("driver")["cores"] == sizing["driver_cores"]
    assert app.main == "/app/src/batch_score_spark.py"
    assert (spark_project / "src/batch_score_spark.py").is_file()  # COPY src src to /app


def test_spark_sizing_grows_with_the_data_volume() -> None:
    small, large, unknown = spark_sizing(100), spark_sizing(5000), spark_sizing(None)
    assert small["executor_instances"] == 2 < large["executor_instances"]
    assert spark_sizing(1_000_000)["executor_instances"] == 100  # capped
    assert small["driver_memory"] == "2g" and large["driver_memory"] == "4g"
    assert large["tasks"] == 5000 * 1024 // 128
    assert unknown["assumed_volume"] and unknown["data_volume_gb"] == 100


def test_the_spark_image_adds_the_s3a_connector_of_its_hadoop_line(spark_project: Path) -> None:
    """'No FileSystem for scheme s3': the image had no hadoop-aws and no AWS SDK."""
    dockerfile = spark_project / "deploy/model/Dockerfile"
    jars = versions()["spark_connector"]["jars"]
    assert batch.image_connector(dockerfile) == {a: j["version"] for a, j in jars.items()}
    # Spark 3.5's Hadoop line (pyspark's jars/hadoop-client-api-3.3.4.jar) and that hadoop-aws
    # release's SDK: the newest of the line a reachable registry ships.
    assert (jars["hadoop-aws"]["version"], jars["aws-java-sdk-bundle"]["version"]) == (
        "3.3.1",
        "1.11.901",
    )


# An ADD of one connector jar, as the version table pins it.
_PINNED_ADD = re.compile(
    r"ADD --checksum=sha256:(?P<sha256>[0-9a-f]{64}) --chmod=644 "
    r"https://repo1\.maven\.org/maven2/(?P<group>[\w/.-]+)/(?P<artifact>[\w.-]+)/"
    r"(?P<version>[\w.-]+)/(?P=artifact)-(?P=version)\.jar /opt/spark/jars/"
)


def test_the_connector_jars_are_added_by_the_digest_the_version_table_pins(
    spark_project: Path,
) -> None:
    """Each ADD to /opt/spark/jars carries --checksum, and names the table's Maven coordinates
    and digest; the rehearsal runs the same files."""
    path = spark_project / "deploy/model/Dockerfile"
    text = path.read_text()
    adds = [line for line in text.splitlines() if line.startswith("ADD ")]
    assert adds and all("/opt/spark/jars" in line for line in adds)
    pinned = [_PINNED_ADD.fullmatch(line) for line in adds]
    assert all(pinned), [line for line, m in zip(adds, pinned, strict=True) if m is None]
    table = versions()["spark_connector"]
    assert {
        m["artifact"]: {
            "group": m["group"].replace("/", "."),
            "version": m["version"],
            "sha256": m["sha256"],
        }
        for m in pinned
        if m is not None
    } == table["jars"]
    assert table["package"] == batch.CONNECTOR_PACKAGE
    assert tuple(j.file for j in batch.added_jars(path)) == batch.CONNECTOR_JARS


def _added(root: Path, text: str) -> list[batch.AddedJar]:
    """The jars a Dockerfile of ``text`` adds to Spark's."""
    path = root / "Dockerfile"
    path.write_text(text)
    return batch.added_jars(path)


def _jar(root: Path, group: str, artifact: str, version: str) -> Path:
    """A jar whose pom.properties names these coordinates (Maven writes one into each jar)."""
    import zipfile

    path = root / f"{artifact}-{version}.jar"
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"#Generated by Maven\nversion={version}\ngroupId={group}\nartifactId={artifact}\n",
        )
    return path


def _add(jar: Path, group: str, checksum: bool = True) -> str:
    artifact, version = jar.stem.rsplit("-", 1)
    digest = hashlib.sha256(jar.read_bytes()).hexdigest()
    flag = f"--checksum=sha256:{digest} " if checksum else ""
    url = f"https://repo1.maven.org/maven2/{group.replace('.', '/')}/{artifact}/{version}"
    return f"ADD {flag}--chmod=644 {url}/{jar.name} /opt/spark/jars/\n"


def test_the_rehearsal_runs_only_the_connector_jars_the_image_adds(tmp_path: Path) -> None:
    aws = _jar(tmp_path, "org.apache.hadoop", "hadoop-aws", "3.3.1")
    sdk = _jar(tmp_path, "com.amazonaws", "aws-java-sdk-bundle", "1.11.901")
    pinned = _add(aws, "org.apache.hadoop") + _add(sdk, "com.amazonaws")
    added = _added(tmp_path, "FROM x\n" + pinned)
    assert [(j.group, j.artifact, j.version) for j in added] == [
        ("org.apache.hadoop", "hadoop-aws", "3.3.1"),
        ("com.amazonaws", "aws-java-sdk-bundle", "1.11.901"),
    ]
    assert batch.connector_problems(added, [aws, sdk]) == []
    # Without --checksum, the image carries whatever the URL serves on the day it is built.
    unpinned = _added(tmp_path, _add(aws, "org.apache.hadoop", checksum=False))
    (problem,) = batch.connector_problems(unpinned, [aws])
    assert "hadoop-aws-3.3.1.jar: its ADD has no --checksum=sha256:" in problem
    # Other bytes than the image's.
    (other,) = _added(tmp_path, _add(aws, "org.apache.hadoop"))
    aws.write_bytes(aws.read_bytes() + b"\0")
    (problem,) = batch.connector_problems([other], [aws])
    assert "hadoop-aws-3.3.1.jar: sha256 " in problem and "its ADD declares" in problem
    # Bytes built as another artifact than the URL names.
    renamed = _jar(tmp_path, "a.b", "c", "1")
    (wrong,) = _added(tmp_path, _add(renamed, "org.example"))
    (problem,) = batch.connector_problems([wrong], [renamed])
    assert "pom.properties names None:None:None, its URL org.example:c:1" in problem


def test_the_image_before_the_pins_fails_the_connector_handoff(tmp_path: Path) -> None:
    """What the image added before: hadoop-aws 3.3.4 and SDK 1.12.262, by URL alone, which the
    rehearsal never ran."""
    aws = _jar(tmp_path, "org.apache.hadoop", "hadoop-aws", "3.3.1")
    sdk = _jar(tmp_path, "com.amazonaws", "aws-java-sdk-bundle", "1.11.901")
    before = "".join(
        f"ADD --chmod=644 https://repo1.maven.org/maven2/{path}/{v}/{a}-{v}.jar /opt/spark/jars/\n"
        for path, a, v in (
            ("org/apache/hadoop/hadoop-aws", "hadoop-aws", "3.3.4"),
            ("com/amazonaws/aws-java-sdk-bundle", "aws-java-sdk-bundle", "1.12.262"),
        )
    )
    problems = batch.connector_problems(_added(tmp_path, before), [aws, sdk])
    assert problems == [
        "hadoop-aws-3.3.4.jar: added by the image, not on the rehearsal's class path",
        "aws-java-sdk-bundle-1.12.262.jar: added by the image, not on the rehearsal's class path",
        "hadoop-aws-3.3.1.jar: on the rehearsal's class path, not added by the image",
        "aws-java-sdk-bundle-1.11.901.jar: on the rehearsal's class path, not added by the image",
    ]


def test_spark_reads_and_writes_s3a_with_the_stores_endpoint(spark_project: Path) -> None:
    app = batch.spark_application(spark_project / batch.SPARK_APPLICATION)
    root = resource_names(SPARK)["artifact_root"].replace("s3://", "s3a://")
    assert app.arguments == [f"{root}/batch/input/", f"{root}/batch/output/"]
    assert app.conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    for role in ("driver", "executor"):
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["key"]
            for e in app.role(role)["env"]
            if "valueFrom" in e
        }
        assert refs["MLFLOW_S3_ENDPOINT_URL"] == "s3-endpoint-url", role
    script = (spark_project / "src/batch_score_spark.py").read_text()
    assert "spark.hadoop.fs.s3a.endpoint" in script


def test_spark_pods_are_restricted(spark_project: Path) -> None:
    app = batch.spark_application(spark_project / batch.SPARK_APPLICATION)
    for role in ("driver", "executor"):
        pod, container = app.role(role)["podSecurityContext"], app.role(role)["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == 1000, role
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, role
        assert container["readOnlyRootFilesystem"] and not container["allowPrivilegeEscalation"]
        assert container["capabilities"] == {"drop": ["ALL"]}, role
        assert app.role(role)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], role


def test_the_spark_application_matches_the_upstream_spark_operator_crd(
    spark_project: Path,
) -> None:
    validators = {}
    for crd in sorted(UPSTREAM.glob("*.yaml")):
        for key, openapi in load_crd_file(crd).items():
            validators[key] = jsonschema.Draft202012Validator(root_schema(openapi))
    docs = _docs(spark_project / batch.SPARK_APPLICATION)
    checked = 0
    for doc in docs:
        validator = validators.get((doc["apiVersion"], doc["kind"]))
        if validator is not None:
            assert [e.message for e in validator.iter_errors(doc)] == []
            checked += 1
    assert checked == 1


def test_validate_schema_checks_spark_applications(spark_project: Path, tmp_path: Path) -> None:
    report = validate(spark_project, select=["MLV101", "MLV103", "MLV110"])
    assert report.ok, [f.message for f in report.findings]
    assert not [n for n in report.notes if "Spark" in str(n)]  # no "no schema known" note
    broken = tmp_path / "broken.yaml"
    text = (spark_project / batch.SPARK_APPLICATION).read_text()
    broken.write_text(text.replace("      instances: 100", "      instance: 100"))
    (tmp_path / "k8s").mkdir()
    broken.rename(tmp_path / "k8s" / "spark-application.yaml")
    found = validate(tmp_path, select=["MLV101", "MLV110"]).findings
    assert [(f.check, "instance" in f.message) for f in found] == [("MLV110", True)]


POD_CHECKS = ["MLV201", "MLV202", "MLV203", "MLV204", "MLV205", "MLV206", "MLV207", "MLV208"]


def test_validate_holds_spark_driver_and_executor_pods_to_the_restricted_profile(
    spark_project: Path, tmp_path: Path
) -> None:
    report = validate(spark_project, select=POD_CHECKS)
    assert report.ok, [f.message for f in report.findings]
    app = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "open"},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "image": "spark:latest",
            "driver": {"cores": 1},
            "executor": {"instances": 2},
        },
    }
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "app.yaml").write_text(yaml.safe_dump(app))
    found = {(f.check, f.message.split(": ")[1]) for f in validate(tmp_path).findings}
    for role in ("driver", "executor"):
        for check in ("MLV201", "MLV202", "MLV203", "MLV205", "MLV206", "MLV207", "MLV208"):
            assert (check, f"container '{role}'") in found, (check, role)


def test_the_shipped_spark_operator_schemas_are_built_from_the_vendored_crds() -> None:
    shipped = SHIPPED / "spark-operator"
    for kind, plural in (
        ("SparkApplication", "sparkapplications"),
        ("ScheduledSparkApplication", "scheduledsparkapplications"),
    ):
        crd = UPSTREAM / f"sparkoperator.k8s.io_{plural}.yaml"
        built = build_shipped(crd, "sparkoperator.k8s.io/v1beta2", kind)
        assert (shipped / f"{kind.lower()}-v1beta2.json").read_text() == built
    assert (shipped / "LICENSE").read_bytes() == (UPSTREAM / "LICENSE").read_bytes()


def test_the_quick_start_deploys_the_spark_application() -> None:
    """It said `spark-submit score.py`, a file no project has."""
    from mlopsctl.api import assess

    design = assess(
        make_requirements(deployment_target="batch", scale_requirements={"data_volume_gb": 5000})
    )
    step = design.quickstart.deploy_command
    assert step.startswith("kubectl apply -f k8s/spark-application.yaml")


# --- the images the rehearsal lays out -----------------------------------------------------------


def test_the_rehearsal_reads_the_spark_image(spark_project: Path) -> None:
    """`USER root` for the build steps was refused, and apache/spark was unknown."""
    image = images.read_dockerfile(spark_project / "deploy/model/Dockerfile")
    assert image.user == (1000, 1000)
    requirements = image.requirements(spark_project)
    assert requirements[0] == f"pyspark=={versions()['packages']['pyspark']}"
    assert "scikit-learn==" + versions()["spark_packages"]["scikit-learn"] in requirements


def test_the_spark_image_gives_the_pods_uid_the_passwd_entry_the_jvm_needs(
    spark_project: Path, tmp_path: Path
) -> None:
    """Hadoop's login (UnixLoginModule) fails for a uid without a passwd entry: `invalid null
    input: name` before the first S3A call; with a read-only root nothing can add one at start."""
    image = images.read_dockerfile(spark_project / "deploy/model/Dockerfile")
    uid, gid = image.user or (0, 0)
    assert image.accounts == {
        "group": [f"scorer:x:{gid}:"],
        "passwd": [f"scorer:x:{uid}:{gid}::/tmp:/usr/sbin/nologin"],
    }
    app = batch.spark_application(spark_project / batch.SPARK_APPLICATION)
    assert app.conf["spark.jars.ivy"].startswith("/tmp/")  # not "?/.ivy2" (user.home)
    from mlopsctl.rehearse.pod import Pod

    job = Pod.create(
        "accounts",
        uid=uid,
        gid=gid,
        workspace=tmp_path,
        workdir=tmp_path,
        image_workdir="/app",
        env={},
        mounts=[],
        read_only_root=True,
        accounts=image.accounts,
    )
    spec = json.loads(job._spec(["true"]).read_text())
    passwd = Path(spec["etc"]["/etc/passwd"]).read_text().splitlines()
    assert [line for line in passwd if line.split(":")[2] == str(uid)] == image.accounts["passwd"]


def test_the_python_image_adds_no_account(cron_project: Path) -> None:
    assert images.read_dockerfile(cron_project / "deploy/model/Dockerfile").accounts == {}


def test_an_image_that_ends_as_root_is_refused(tmp_path: Path) -> None:
    from mlopsctl.rehearse.entrypoints import project_image
    from mlopsctl.rehearse.errors import ProjectError
    from mlopsctl.rehearse.network import ClusterNetwork

    (tmp_path / "deploy/model").mkdir(parents=True)
    (tmp_path / "deploy/model/Dockerfile").write_text("FROM python:3.11-slim\nUSER root\n")
    network = ClusterNetwork()
    try:
        stage = Stage(tmp_path, tmp_path, tmp_path, network, Rehearsal(tmp_path), {})
        with pytest.raises(ProjectError, match="root"):
            project_image(stage)
    finally:
        network.close()


# --- the rehearsal -------------------------------------------------------------------------------


def _handoffs(report: Rehearsal, component: str) -> list[Handoff]:
    return [h for h in report.handoffs if h.component == component]


@pytest.fixture(scope="module")
def cron_rehearsal(cron_project: Path) -> Iterator[tuple[Stage, Rehearsal]]:
    with session(cron_project) as stage:
        yield stage, run_components(stage, ("tracking-server", "entrypoints", "batch"))


@pytest.fixture(scope="module")
def spark_rehearsal(spark_project: Path) -> Iterator[tuple[Stage, Rehearsal]]:
    with session(spark_project) as stage:
        yield stage, run_components(stage, ("tracking-server", "entrypoints", "batch"))


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_rehearsed_cronjob_scores_object_store_input_into_the_object_store(
    cron_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _stage, report = cron_rehearsal
    own = _handoffs(report, "batch")
    assert own and all(h.passed for h in own), explain(report)
    names = [h.name for h in own]
    assert "the predictions are in the object store, one per input row" in names
    result = json.loads(own[-1].detail)
    assert result["written"] == {"part-0.csv": batch.ROWS, "part-1.csv": batch.ROWS}


@pytest.mark.slow
@pytest.mark.xdist_group("rehearse")
def test_rehearsed_spark_application_scores_through_s3a(
    spark_rehearsal: tuple[Stage, Rehearsal],
) -> None:
    _stage, report = spark_rehearsal
    own = _handoffs(report, "batch")
    assert own and all(h.passed for h in own), explain(report)
    result = json.loads(own[-1].detail)
    assert result["rows"] == result["predictions"] == batch.ROWS * batch.INPUT_OBJECTS
    assert result["parts"] >= 1
