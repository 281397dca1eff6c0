"""The deployment files, checked without a Docker engine: docker-compose.yml and the node
compose file, the Dockerfiles, .dockerignore, .env.example against every variable the code
reads, and the helper scripts the images run (executed for real)."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import pytest
import yaml

from codecshift.config import env_names, load_settings
from codecshift.initsql import APP_ROLE
from support.services import POSTGRES_ADMIN_URL, REDIS_BASE_URL, fresh_postgres_database, redis_database

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
NODE_COMPOSE = ROOT / "docker" / "node.compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = {"web": ROOT / "docker" / "web.Dockerfile", "worker": ROOT / "docker" / "worker.Dockerfile"}
SOURCE_DIRS = ("codecshift", "tasks", "web", "docker")

CORE = ("web", "beat", "control")
WORKERS = ("worker-cpu", "worker-nvenc", "worker-qsv")
SERVICES = ("db", "redis", *CORE, *WORKERS, "flower")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")

# Variables the code may read that are the operating system's, not CodecShift's settings.
SYSTEM_VARIABLES = {"PATH", "HOME", "TMPDIR", "TZ", "LANG", "USER"}


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _command(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# -- docker-compose.yml ------------------------------------------------------------------------


def test_every_service_is_there_with_its_command(services: dict) -> None:
    assert set(SERVICES) <= set(services)
    assert _command(services["web"]) == ["codecshift", "web"]
    assert _command(services["control"]) == ["codecshift", "control"]
    assert _command(services["flower"]) == ["codecshift", "flower"]
    for name in WORKERS:
        assert _command(services[name]) == ["codecshift", "worker"], name


def test_exactly_one_beat(services: dict) -> None:
    beats = [name for name, service in services.items() if "beat" in _command(service)]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_db_runs_init_sql_and_has_a_healthcheck(services: dict) -> None:
    db = services["db"]
    assert db["image"].split(":")[1].startswith("16")
    mounts = [v.split(":") for v in db["volumes"] if isinstance(v, str)]
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/") and m[1].endswith(".sql")]
    assert len(init) == 1 and init[0][0] == "./init.sql" and (ROOT / "init.sql").is_file()
    role = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/") and m[1].endswith(".sh")]
    assert role and (ROOT / role[0][0]).is_file()
    assert sorted([init[0][1], role[0][1]]) == [init[0][1], role[0][1]], "init.sql must run first"
    test = db["healthcheck"]["test"]
    assert "pg_isready" in test
    # TCP, not the socket: the init-time server listens on the socket only
    assert "-h" in test and test[test.index("-h") + 1] == "127.0.0.1"
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", [*CORE, *WORKERS])
def test_depends_on_healthy_db_and_redis(services: dict, name: str) -> None:
    depends = services[name]["depends_on"]
    for dependency in ("db", "redis"):
        assert depends[dependency]["condition"] == "service_healthy", (name, dependency)


def test_every_service_has_a_healthcheck(services: dict) -> None:
    for name, service in services.items():
        if service.get("restart") == "no":
            continue  # a one-shot job: its exit code is its health
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_schema_job_applies_init_sql_before_the_database_users_start(services: dict) -> None:
    schema = services["schema"]
    command = _command(schema)
    assert command[0] == "psql" and "ON_ERROR_STOP=1" in command
    assert command[command.index("-U") + 1] == "postgres", "as the owner: the app role cannot CREATE"
    target = command[command.index("-f") + 1]
    assert f"./init.sql:{target}:ro" in schema["volumes"]
    assert schema["depends_on"]["db"]["condition"] == "service_healthy"
    for name in CORE:
        assert services[name]["depends_on"]["schema"]["condition"] == "service_completed_successfully"


def test_workers_get_the_dashboard_not_the_database(services: dict) -> None:
    for name in WORKERS:
        service = services[name]
        env = _environment(service)
        assert "CODECSHIFT_DATABASE_URL" not in env, name
        assert not [key for key in env if key.startswith("POSTGRES")], name
        assert "env_file" not in service, f"{name}: .env holds the database passwords"
        assert env["CODECSHIFT_DASHBOARD_URL"].startswith("http://web:")
        assert "CODECSHIFT_API_KEY" in env and "CODECSHIFT_BROKER_URL" in env
        assert env["CODECSHIFT_NODE_NAME"], f"{name}: a stable node name across restarts"
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    for name in CORE:
        assert "CODECSHIFT_DATABASE_URL" in _environment(services[name]), name


def test_gpu_workers_are_behind_profiles(services: dict) -> None:
    assert "nvenc" in services["worker-nvenc"]["profiles"]
    assert "qsv" in services["worker-qsv"]["profiles"]
    for name, service in services.items():
        if name not in ("worker-nvenc", "worker-qsv"):
            assert not service.get("profiles"), f"{name} must start on a machine without a GPU"


def _check_nvenc(service: dict) -> None:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if d.get("driver") == "nvidia"]
    assert nvidia and {"gpu", "video"} <= set(nvidia[0]["capabilities"])
    assert "video" in _environment(service)["NVIDIA_DRIVER_CAPABILITIES"].split(",")


def _check_qsv(service: dict) -> None:
    assert any(str(d).split(":")[0] == "/dev/dri" for d in service["devices"])
    assert service["group_add"], "the render group owns /dev/dri/renderD*"


def test_gpu_passthrough(services: dict) -> None:
    _check_nvenc(services["worker-nvenc"])
    _check_qsv(services["worker-qsv"])


def test_flower_is_protected(services: dict) -> None:
    flower = services["flower"]
    env = _environment(flower)
    for key in ("CODECSHIFT_FLOWER_BASIC_AUTH", "FLOWER_BASIC_AUTH"):
        # required: compose refuses to start without it
        assert re.fullmatch(r"\$\{CODECSHIFT_FLOWER_BASIC_AUTH:\?[^}]+\}", env[key]), key
    assert env["FLOWER_ENABLE_EVENTS"] == "true"
    published = [str(p) for p in flower.get("ports", [])]
    assert all("127.0.0.1" in p for p in published), "Flower is published on loopback by default"


def test_media_and_data_volumes(compose: dict, services: dict) -> None:
    assert {"pgdata", "data"} <= set(compose["volumes"])
    for name in ("control", *WORKERS):
        mounts = [v for v in services[name]["volumes"] if isinstance(v, dict)]
        assert any(m["target"] == "/media" and not m.get("read_only") for m in mounts), name
    web_media = [v for v in services["web"]["volumes"] if isinstance(v, dict) and v["target"] == "/media"]
    assert web_media and web_media[0]["read_only"] is True
    for name in CORE:
        assert "data:/data" in services[name]["volumes"], name


def _builds(path: Path) -> Iterator[tuple[str, dict]]:
    for name, service in _yaml(path)["services"].items():
        if "build" in service:
            yield name, service


@pytest.mark.parametrize("path", [COMPOSE, NODE_COMPOSE], ids=["main", "node"])
def test_images_build_from_the_project_root(path: Path) -> None:
    built = list(_builds(path))
    assert built
    for name, service in built:
        build = service["build"]
        assert build["context"] == ".", name
        assert (ROOT / build["dockerfile"]).resolve() in {p.resolve() for p in DOCKERFILES.values()}, name
        assert build["args"]["VERSION"].startswith("${CODECSHIFT_IMAGE_VERSION"), name
        assert "${CODECSHIFT_IMAGE_VERSION" in service["image"], f"{name}: tag images by version"


def test_node_compose_is_a_worker_only_cluster_member() -> None:
    node = _yaml(NODE_COMPOSE)["services"]
    assert set(node) == set(WORKERS)
    for name, service in node.items():
        env = _environment(service)
        assert _command(service) == ["codecshift", "worker"]
        assert "depends_on" not in service and "CODECSHIFT_DATABASE_URL" not in env
        for key in ("CODECSHIFT_BROKER_URL", "CODECSHIFT_DASHBOARD_URL", "CODECSHIFT_API_KEY"):
            assert ":?" in env[key], f"{name}: {key} is required on a remote node"
        assert service["healthcheck"]["test"]
    _check_nvenc(node["worker-nvenc"])
    _check_qsv(node["worker-qsv"])
    assert "profiles" not in node["worker-cpu"]


def test_compose_only_sets_known_codecshift_variables() -> None:
    known = set(env_names())
    for path in (COMPOSE, NODE_COMPOSE):
        for name, service in _yaml(path)["services"].items():
            unknown = {key for key in _environment(service) if key.startswith("CODECSHIFT_")} - known
            assert not unknown, f"{path.name} {name}: no such setting {unknown}"


# -- Dockerfiles -----------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _ignore_patterns() -> list[tuple[bool, str]]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [(line.startswith("!"), line.lstrip("!").strip("/")) for line in map(str.strip, lines)
            if line and not line.startswith("#")]


def _ignored(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers what is below it."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in _ignore_patterns():
        if pattern.startswith("**/"):
            tail = pattern[3:]
            hit = any(fnmatch.fnmatch(part, tail) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates)
        if hit:
            ignored = not negated
    return ignored


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_copies_exist_in_the_context(kind: str) -> None:
    copies = [args for word, args in _instructions(DOCKERFILES[kind]) if word in ("COPY", "ADD")]
    assert copies
    for args in copies:
        words = [w for w in args.split() if not w.startswith("--")]
        if "--from=" in args:
            continue
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"{kind}: COPY {source} does not exist in the project root"
            assert not _ignored(source), f"{kind}: COPY {source} is excluded by .dockerignore"
    assert not _ignored("docker/check-version.sh") and _ignored(".env") and not _ignored(".env.example")
    assert _ignored(".git") and _ignored("codecshift/__pycache__/x.pyc") and not _ignored("codecshift/media")


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_version_label_comes_from_version_txt(kind: str) -> None:
    steps = _instructions(DOCKERFILES[kind])
    text = DOCKERFILES[kind].read_text(encoding="utf-8")
    assert re.search(r'org\.opencontainers\.image\.version="?\$\{?VERSION\}?"?', text)
    assert text.count("ARG VERSION") >= 2, "declared in the build stage and the final stage"
    copies_version = [a for w, a in steps if w == "COPY" and "VERSION.txt" in a.split()[:-1]]
    assert copies_version, "VERSION.txt is copied in"
    checks = [a for w, a in steps if w == "RUN" and "check-version.sh" in a]
    assert checks and '"$VERSION"' in checks[0] and "VERSION.txt" in checks[0]
    assert not re.search(r"\d+\.\d+\.\d+", "".join(a for w, a in steps if w in ("ARG", "LABEL"))), \
        "no version number written in the Dockerfile"


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_dockerfile_runs_as_a_user_with_a_healthcheck(kind: str) -> None:
    steps = _instructions(DOCKERFILES[kind])
    users = [a for w, a in steps if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthchecks = [a for w, a in steps if w == "HEALTHCHECK"]
    assert healthchecks and "codecshift-healthcheck" in healthchecks[-1]
    assert any(w == "COPY" and a.startswith("docker/healthcheck.py") for w, a in steps)


def test_worker_image_has_a_hardware_ffmpeg() -> None:
    steps = _instructions(DOCKERFILES["worker"])
    runs = " ".join(a for w, a in steps if w == "RUN")
    assert "repo.jellyfin.org" in runs and "JELLYFIN_FFMPEG" in runs and "mesa-va-drivers" in runs
    assert "/usr/local/bin/ffmpeg" in runs and "/usr/local/bin/ffprobe" in runs
    for encoder in ("hevc_nvenc", "hevc_qsv", "hevc_vaapi", "libx265", "libsvtav1"):
        assert encoder in runs, f"the build checks that ffmpeg has {encoder}"
    env = " ".join(a for w, a in steps if w == "ENV")
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,video,utility" in env
    assert "Why jellyfin-ffmpeg" in DOCKERFILES["worker"].read_text(encoding="utf-8")


# -- the scripts the images run ---------------------------------------------------------------


def _run(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def test_check_version_script(tmp_path: Path) -> None:
    script = str(ROOT / "docker" / "check-version.sh")
    version = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()
    ok = _run("sh", script, version, str(ROOT / "VERSION.txt"))
    assert ok.returncode == 0 and version in ok.stdout
    stale = _run("sh", script, "0.0.0-stale", str(ROOT / "VERSION.txt"))
    assert stale.returncode == 1 and "VERSION.txt says" in stale.stderr
    empty = _run("sh", script, "", str(ROOT / "VERSION.txt"))
    assert empty.returncode == 1 and "empty" in empty.stderr
    missing = _run("sh", script, version, str(tmp_path / "VERSION.txt"))
    assert missing.returncode == 1


def test_compose_wrapper_exports_the_version_from_version_txt(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\necho "$CODECSHIFT_IMAGE_VERSION|$PWD|$*"\n')
    (fake / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    result = _run(str(ROOT / "docker" / "compose.sh"), "up", "-d", env=env)
    version = (ROOT / "VERSION.txt").read_text(encoding="utf-8").strip()
    assert result.stdout.strip() == f"{version}|{ROOT}|compose --project-directory . up -d"


def test_initdb_script_gives_the_application_role_its_password() -> None:
    script = (ROOT / "docker" / "initdb-app-role.sh").read_text(encoding="utf-8")
    assert f"ALTER ROLE {APP_ROLE} " in script
    with fresh_postgres_database("cs_deploy") as url:
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute((ROOT / "init.sql").read_text(encoding="utf-8"))
            cursor.execute("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (APP_ROLE,))
            (had_password,) = cursor.fetchone()
        admin = psycopg2.extensions.parse_dsn(url)
        env = {**os.environ, "PGHOST": admin.get("host", "127.0.0.1"), "PGPORT": admin.get("port", "5432"),
               "POSTGRES_USER": admin.get("user", "postgres"), "POSTGRES_DB": admin["dbname"]}
        try:
            refused = _run("sh", str(ROOT / "docker" / "initdb-app-role.sh"),
                           env={**env, "POSTGRES_APP_PASSWORD": ""})
            assert refused.returncode == 1 and "POSTGRES_APP_PASSWORD" in refused.stderr
            # quotes and shell characters survive psql's :'' quoting
            done = _run("sh", str(ROOT / "docker" / "initdb-app-role.sh"),
                        env={**env, "POSTGRES_APP_PASSWORD": "it's $(x) \"q\""})
            assert done.returncode == 0, done.stderr
            with conn.cursor() as cursor:
                cursor.execute("SELECT rolpassword IS NOT NULL, rolcanlogin FROM pg_authid "
                               "WHERE rolname = %s", (APP_ROLE,))
                assert cursor.fetchone() == (True, True)
        finally:
            if not had_password:  # leave the shared test cluster's role as it was
                with conn.cursor() as cursor:
                    cursor.execute(f"ALTER ROLE {APP_ROLE} PASSWORD NULL")
            conn.close()
    assert POSTGRES_ADMIN_URL  # the script ran against the suite's PostgreSQL


# -- docker/healthcheck.py ----------------------------------------------------------------------


def _health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODECSHIFT_")}
    return _run(sys.executable, str(ROOT / "docker" / "healthcheck.py"), *args, env={**base, **(env or {})})


@pytest.fixture
def http_status() -> Iterator[tuple[str, list[int]]]:
    """A local server answering with the status at the head of the returned list."""
    statuses = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0])
            if 300 <= statuses[0] < 400:
                self.send_header("Location", "/login")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", statuses
    server.shutdown()
    server.server_close()


def test_http_healthcheck(http_status) -> None:
    url, statuses = http_status
    assert _health("http", url).returncode == 0
    statuses[0] = 302  # auth on: the dashboard redirects to sign-in, and is healthy
    assert _health("http", url).returncode == 0
    statuses[0] = 503
    failed = _health("http", url)
    assert failed.returncode == 1 and "server error 503" in failed.stdout
    port = url.rsplit(":", 1)[1].strip("/")
    # without a URL it checks this container's dashboard port
    assert _health("http", env={"CODECSHIFT_WEB_PORT": port}).returncode == 1
    statuses[0] = 200
    assert _health("http", env={"CODECSHIFT_WEB_PORT": port}).returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = _health("http", f"http://127.0.0.1:{closed}/")
    assert down.returncode == 1 and "no answer" in down.stdout
    assert _health("nonsense").returncode == 2


@pytest.fixture
def broker() -> Iterator[str]:
    """A Redis database of its own: Celery's broadcast channels are per database."""
    with redis_database() as number:
        yield f"{REDIS_BASE_URL}/{number}"


def test_broker_healthcheck(broker: str) -> None:
    assert _health("broker", env={"CODECSHIFT_BROKER_URL": broker}).returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    for mode in ("broker", "celery"):
        down = _health(mode, "--timeout", "1", env={"CODECSHIFT_BROKER_URL": f"redis://127.0.0.1:{closed}/0"})
        assert down.returncode == 1 and "unreachable" in down.stdout, (mode, down.stdout)


def test_celery_healthcheck_finds_this_containers_worker(tmp_path: Path, broker: str) -> None:
    node = f"hc-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--broker", broker, "worker", "--pool", "solo",
         "--hostname", f"codecshift@{node}", "--without-heartbeat", "--without-mingle",
         "--without-gossip", "--loglevel", "WARNING"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        env = {"CODECSHIFT_BROKER_URL": broker, "CODECSHIFT_NODE_NAME": node}
        deadline = time.monotonic() + 60
        result = _health("celery", "--timeout", "1", env=env)
        while result.returncode != 0 and time.monotonic() < deadline and worker.poll() is None:
            result = _health("celery", "--timeout", "1", env=env)
        assert result.returncode == 0, (result.stdout, worker.stderr.read() if worker.poll() else "")
        assert f"codecshift@{node}" in result.stdout
        other = _health("celery", "--timeout", "1", env={**env, "CODECSHIFT_NODE_NAME": f"{node}-other"})
        assert other.returncode == 1 and f"codecshift@{node}" in other.stdout  # heard, but not ours
        assert f"codecshift@{node}-other" in other.stdout
    finally:
        worker.terminate()
        worker.wait(30)


# -- .env.example -------------------------------------------------------------------------------

_VARIABLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def _env_example() -> tuple[dict[str, str], dict[str, str], dict[str, bool]]:
    """(set values, commented example values, documented?) by variable name."""
    set_values: dict[str, str] = {}
    examples: dict[str, str] = {}
    documented: dict[str, bool] = {}
    previous = ""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _VARIABLE_LINE.match(line)
        if match:
            name, value = match.groups()
            assert name not in documented, f".env.example lists {name} twice"
            (examples if line.startswith("#") else set_values)[name] = value
            described = previous.startswith("#") and not _VARIABLE_LINE.match(previous) \
                and previous.strip("#= -").strip() != ""
            documented[name] = described
        previous = line
    return set_values, examples, documented


def _string_constants(tree: ast.AST) -> dict[str, str]:
    """Module-level NAME = "text" assignments, to follow os.environ.get(NAME)."""
    constants = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value.value
    return constants


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or \
        (isinstance(node, ast.Name) and node.id == "environ")


def _env_reads(tree: ast.AST) -> set[str]:
    """Names read through os.environ[...], os.environ.get/pop/setdefault(...), os.getenv(...)
    and `"X" in os.environ`, following module-level string constants."""
    constants = _string_constants(tree)

    def name_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return None

    names: set[str] = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = name_of(node.slice)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_method = isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault") \
                and _is_environ(func.value)
            getenv = (isinstance(func, ast.Attribute) and func.attr == "getenv") or \
                (isinstance(func, ast.Name) and func.id == "getenv")
            if environ_method or getenv:
                key = name_of(node.args[0])
        elif isinstance(node, ast.Compare) and len(node.comparators) == 1 \
                and isinstance(node.ops[0], ast.In | ast.NotIn) and _is_environ(node.comparators[0]):
            key = name_of(node.left)
        if key:
            names.add(key)
    return names


def _is_flask_config_key(node: ast.Constant, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    return isinstance(parent, ast.Subscript) and isinstance(parent.value, ast.Attribute) \
        and parent.value.attr == "config"


def variables_read_by_the_code(root: Path = ROOT, folders: tuple[str, ...] = SOURCE_DIRS) -> dict[str, str]:
    """Every environment variable the source reads, with where: environ reads of any name,
    and every whole "CODECSHIFT_..." string literal (a name read elsewhere still counts;
    fragments of f-string messages and Flask config keys do not)."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            where = str(path.relative_to(root))
            for name in _env_reads(tree):
                found.setdefault(name, where)
            parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and re.fullmatch(r"CODECSHIFT_[A-Z0-9_]*[A-Z0-9]", node.value) \
                        and not node.value.startswith("CODECSHIFT_TEST_") \
                        and not isinstance(parents.get(node), ast.JoinedStr) \
                        and not _is_flask_config_key(node, parents):
                    found.setdefault(node.value, where)
    return found


def compose_variables() -> dict[str, set[str]]:
    """${VAR} interpolations per compose file."""
    return {path.name: set(INTERPOLATION.findall(path.read_text(encoding="utf-8")))
            for path in (COMPOSE, NODE_COMPOSE)}


def test_the_source_scanner_finds_reads(tmp_path: Path) -> None:
    """The scanner below is what keeps .env.example complete, so check it sees each form."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text(
        'import os\nfrom os import environ, getenv\nNAME = "CODECSHIFT_FROM_CONSTANT"\n'
        'a = os.environ["A_SUBSCRIPT"]\nb = os.environ.get("B_GET", "x")\nc = os.getenv("C_GETENV")\n'
        'd = environ.get(NAME)\ne = "E_IN" in os.environ\nf = getenv("F_BARE")\n'
        'g = os.environ.setdefault("G_SETDEFAULT", "1")\n'
        'app.config["CODECSHIFT_FLASK_KEY"] = 1\nflags = dict(CODECSHIFT_KEYWORD=1)\n'
        'later = "CODECSHIFT_" + "BUILT"\nliteral = "CODECSHIFT_LITERAL_ANYWHERE"\n'
        'message = f"CODECSHIFT_OIDC_{missing}: needed"\n'
        'test_only = "CODECSHIFT_TEST_POSTGRES"\n')
    found = variables_read_by_the_code(tmp_path, ("pkg",))
    assert set(found) == {"A_SUBSCRIPT", "B_GET", "C_GETENV", "CODECSHIFT_FROM_CONSTANT", "E_IN", "F_BARE",
                          "G_SETDEFAULT", "CODECSHIFT_LITERAL_ANYWHERE"}
    assert found["B_GET"] == "pkg/mod.py"


def test_env_example_documents_every_variable() -> None:
    set_values, examples, documented = _env_example()
    listed = set(set_values) | set(examples)
    wanted: dict[str, str] = {name: "codecshift.config.env_names()" for name in env_names()}
    for name, where in variables_read_by_the_code().items():
        if name not in SYSTEM_VARIABLES:
            wanted.setdefault(name, where)
    for file_name, names in compose_variables().items():
        for name in names:
            wanted.setdefault(name, file_name)
    missing = {name: where for name, where in wanted.items() if name not in listed}
    assert not missing, f"add these to .env.example with a comment: {missing}"
    undocumented = sorted(name for name, ok in documented.items() if not ok)
    assert not undocumented, f"give each a comment line right above it: {undocumented}"


def test_required_compose_variables_are_left_for_the_user_to_fill() -> None:
    set_values, _, _ = _env_example()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert required >= {"POSTGRES_PASSWORD", "POSTGRES_APP_PASSWORD", "REDIS_PASSWORD",
                        "CODECSHIFT_FLOWER_BASIC_AUTH"}
    for name in required:
        assert name in set_values and set_values[name] == "", f"{name}: an empty line to fill in, no default"


def test_env_example_values_are_valid_settings() -> None:
    """The active lines, and every example value once uncommented, parse as settings."""
    set_values, examples, _ = _env_example()
    load_settings({k: v for k, v in set_values.items() if k.startswith("CODECSHIFT_") and v})
    settings = load_settings({k: v for k, v in examples.items() if k.startswith("CODECSHIFT_") and v})
    assert settings.path_mappings == ["/media=/mnt/nas/media"]
    assert settings.oidc_algorithms[0] == "RS256"
