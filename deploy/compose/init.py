"""Make what compose.yaml needs to run with no Supabase project, once: an env file (Postgres password,
DATABASE_URL, the JWT secret and the service key signed with it, the Storage stand-in's URL, the ports) and a
development C2PA signing certificate. Run inside voicegate's image by `deploy/compose/init.sh`, which names
the output directory; what already exists there is kept, so running it again changes nothing. The env file is
also every voicegate container's environment (compose.yaml's `env_file`): a provider's key is added there.

The certificate comes from a development CA made here (as `voicegate up` makes one): files signed with it
validate, but nobody trusts that CA. Put a real certificate in `c2pa/` (signer.pem: the chain, signer.key,
ca.pem: its root) for production.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
from pathlib import Path

from backend.provenance.devca import CA_CERT, SIGNER_CERT, SIGNER_KEY, dev_directory, load_or_create_dev_credentials
from standins.dev_tokens import mint_service_key

#: The image's user (Containerfile), which must read the signing key.
IMAGE_UID = 10001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory for `env`, `c2pa/` and the development CA")
    parser.add_argument("--db-port", type=int, default=5432)
    parser.add_argument("--storage-port", type=int, default=5000)
    parser.add_argument("--api-ports", type=int, nargs=2, default=(8001, 8002))
    parser.add_argument("--shown-as", type=Path, help="`out` as the host names it (the messages name that)")
    args = parser.parse_args()
    out: Path = args.out
    shown: Path = args.shown_as or out
    env_file = out / "env"
    if env_file.exists():
        print(f"{shown / 'env'}: kept")
    else:
        password, jwt_secret = secrets.token_hex(24), secrets.token_urlsafe(48)
        lines = {
            "POSTGRES_PASSWORD": password,
            "VOICEGATE_DB_PORT": args.db_port,
            "VOICEGATE_STORAGE_PORT": args.storage_port,
            "VOICEGATE_API1_PORT": args.api_ports[0],
            "VOICEGATE_API2_PORT": args.api_ports[1],
            "DATABASE_URL": f"postgresql://postgres:{password}@127.0.0.1:{args.db_port}/postgres",
            "SUPABASE_URL": f"http://127.0.0.1:{args.storage_port}",
            "SUPABASE_JWT_SECRET": jwt_secret,
            "SUPABASE_SERVICE_ROLE_KEY": mint_service_key(jwt_secret),
        }
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{name}={value}\n" for name, value in lines.items())
        print(f"{shown / 'env'}: written")
    c2pa = out / "c2pa"
    if c2pa.exists():
        print(f"{shown / 'c2pa'}: kept")
        return
    load_or_create_dev_credentials(out)  # the CA's key stays in c2pa-dev/, out of every container
    c2pa.mkdir(mode=0o755)
    for name in (SIGNER_CERT, SIGNER_KEY, CA_CERT):
        shutil.copyfile(dev_directory(out) / name, c2pa / name)
        (c2pa / name).chmod(0o600 if name == SIGNER_KEY else 0o644)
        if os.getuid() == 0:
            os.chown(c2pa / name, IMAGE_UID, IMAGE_UID)
    print(f"{shown / 'c2pa'}: development signing certificate written")


if __name__ == "__main__":
    main()
