"""Where the local stack listens and keeps its files. Every value can be set by an
`UPSTREAM_STACK_*` environment variable; the defaults just work."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

import upstream
from upstream.stack.topology import FUNCTIONS

_API_OFFSET = next(i for i, spec in enumerate(FUNCTIONS) if spec.name == "api")


def _repository_root() -> Path:
    # Editable install: shared/upstream/__init__.py → the repository root.
    return Path(upstream.__file__).resolve().parents[2]


def _default_functions_dir() -> Path:
    return _repository_root() / "functions"


def _default_firebase() -> Path:
    # `make setup` runs `npm ci` in the repository root (package.json, package-lock.json).
    return _repository_root() / "node_modules" / ".bin" / "firebase"


class StackConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UPSTREAM_STACK_", frozen=True)

    project: str = "upstream-local"
    host: str = "127.0.0.1"
    firestore_port: int = 8681
    pubsub_port: int = 8682
    storage_port: int = 8683
    functions_base_port: int = 8690
    athena_port: int = 8689  # the fake athenaOne API (upstream.stack.fake_athena)
    smtp_port: int = 8688  # the local SMTP server (upstream.stack.mailbox)
    # The Firebase Auth emulator and the two ports firebase-tools reserves beside it (its hub
    # and its logging socket); by default the three after Storage, so every stack that sets
    # its own Firestore port gets its own (0: that default; a plain int so the whole config
    # round-trips through UPSTREAM_STACK_* variables).
    auth_port: int = 0
    firebase_bin: Path = _default_firebase()
    data_dir: Path = Path(".upstream")
    bucket: str = "upstream-uploads"
    functions_dir: Path = _default_functions_dir()
    gcloud_root: Path = Path("/usr/lib/google-cloud-sdk")

    @property
    def state_file(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "secrets.json"

    @property
    def auth_ports(self) -> tuple[int, int, int]:
        """(auth, hub, logging)."""
        auth = self.auth_port or self.firestore_port + 3
        return auth, auth + 1, auth + 2

    @property
    def gateway_port(self) -> int:
        """The upload gateway (`stack/storage_gateway.py`): signed browser PUTs."""
        return self.firestore_port + 6

    @property
    def auth_host(self) -> str:
        return f"{self.host}:{self.auth_ports[0]}"

    def url(self, port: int) -> str:
        return f"http://{self.host}:{port}"

    def emulator_env(self) -> dict[str, str]:
        """What a client (a function, the CLI, a test) needs to reach the emulators."""
        return {
            "FIRESTORE_EMULATOR_HOST": f"{self.host}:{self.firestore_port}",
            "PUBSUB_EMULATOR_HOST": f"{self.host}:{self.pubsub_port}",
            "STORAGE_EMULATOR_HOST": self.url(self.storage_port),
            "GOOGLE_CLOUD_PROJECT": self.project,
            "UPSTREAM_PROJECT": self.project,
            "UPSTREAM_SECRETS_BACKEND": "local",
            "UPSTREAM_SECRETS_FILE": str(self.secrets_file.resolve()),
            "UPSTREAM_ATHENA_BASE_URL": self.url(self.athena_port),
            "FIREBASE_AUTH_EMULATOR_HOST": self.auth_host,
            # The dashboard's base URL, for links in invitations (the `api` function).
            "UPSTREAM_DASHBOARD_URL": self.url(self.functions_base_port + _API_OFFSET),
            # Browser uploads: signed with the stack's key, checked by its gateway.
            "UPSTREAM_UPLOADS_BUCKET": self.bucket,
            "UPSTREAM_UPLOAD_ENDPOINT": self.url(self.gateway_port),
            "UPSTREAM_UPLOAD_SIGNER": "local",
            # No authenticator codes by default here: `--password` people (tests, the demo)
            # sign in with the password alone; a practice can still require them.
            "UPSTREAM_MFA_ROLES": "",
        }
