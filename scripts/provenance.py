#!/usr/bin/env python3
"""Writes DIST/provenance.json for scripts/release.sh: an in-toto Statement v1 whose subjects are
the release archives with their SHA-256 (as in DIST/SHA256SUMS), with an SLSA provenance v1
predicate: the builder, the source commit, the Cargo.lock digest, the toolchain that built them
(rustc, cargo, Zig, cargo-zigbuild, the C compilers) and the parameters of the build.

    scripts/provenance.py DIST VERSION TARGET...

BEACON_BUILDER_ID names the builder (on GitHub Actions: the workflow run, by default). The file
has no time in it but SOURCE_DATE_EPOCH, so a rebuild of the same commit writes the same text
wherever the archives are the same.
"""
import hashlib
import json
import os
import subprocess
import sys
import tomllib


def run(*cmd):
    """First line of a command's output, or None when it cannot run."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(dist, version, targets):
    manifest = tomllib.load(open("Cargo.toml", "rb"))["package"]
    repository = manifest["repository"]
    subjects = []
    for line in open(os.path.join(dist, "SHA256SUMS")):
        digest, name = line.split()
        if sha256(os.path.join(dist, name)) != digest:
            sys.exit(f"provenance: {name} does not match SHA256SUMS")
        subjects.append({"name": name, "digest": {"sha256": digest}})

    commit = run("git", "rev-parse", "HEAD")
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    server, repo = os.environ.get("GITHUB_SERVER_URL"), os.environ.get("GITHUB_REPOSITORY")
    source_uri = f"git+{server}/{repo}" if server and repo else f"git+{repository}"
    ref = os.environ.get("GITHUB_REF")
    if ref:
        source_uri += f"@{ref}"
    builder = os.environ.get("BEACON_BUILDER_ID") or (
        f"{server}/{repo}/.github/workflows/release.yml@{ref}" if server and repo and ref
        else f"{repository}/blob/main/scripts/release.sh (run by hand)"
    )
    toolchain = {
        "rustc": run("rustc", "-V"),
        "cargo": run("cargo", "-V"),
        "zig": run(sys.executable, "-m", "ziglang", "version") or run("zig", "version"),
        "cargo-zigbuild": run("cargo-zigbuild", "--version"),
        "musl-gcc": run("musl-gcc", "--version"),
        "x86_64-w64-mingw32-gcc": run("x86_64-w64-mingw32-gcc", "--version"),
    }
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": f"{repository}/blob/main/docs/releasing.md#what-a-release-is",
                "externalParameters": {
                    "version": version,
                    "targets": targets,
                    "source": {"uri": source_uri, "digest": {"gitCommit": commit}},
                    "branded": sorted(k for k in os.environ if k.startswith("BEACON_BUILD_")),
                },
                "internalParameters": {
                    "SOURCE_DATE_EPOCH": os.environ.get("BEACON_EPOCH"),
                    "profile": "release",
                    "uncommittedChanges": dirty,
                },
                "resolvedDependencies": [
                    {"uri": source_uri, "digest": {"gitCommit": commit}},
                    {"name": "Cargo.lock", "digest": {"sha256": sha256("Cargo.lock")}},
                    *(
                        {"name": name, "annotations": {"version": v}}
                        for name, v in toolchain.items() if v
                    ),
                ],
            },
            "runDetails": {
                "builder": {"id": builder, "version": {k: v for k, v in toolchain.items() if v}},
                "metadata": {"invocationId": os.environ.get("GITHUB_RUN_ID", "local")},
            },
        },
    }
    with open(os.path.join(dist, "provenance.json"), "w") as f:
        json.dump(statement, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__.strip())
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
