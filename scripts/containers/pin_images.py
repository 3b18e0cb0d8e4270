"""Pins the images a stack deploys: rewrites `recplat:images` in Pulumi.<stack>.yaml.

The deploy workflow runs it before `pulumi up`, so a stack deploys exactly the images its
commit built and pushed (dev) or imported (prod), by digest; the tag stays in the reference
to say which commit it is. The repositories stay as the stack file names them:

    python scripts/containers/pin_images.py --stack dev --tag "$GITHUB_SHA" \
        --digests "service=sha256:...,training=sha256:...,mlflow=sha256:..."
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

IMAGES_KEY = "recplat:images"
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def parse_digests(text: str) -> dict[str, str]:
    """`service=sha256:...,training=sha256:...` as a mapping, refusing anything else."""
    digests: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, digest = item.partition("=")
        if not DIGEST.match(digest):
            raise ValueError(f"--digests: {item!r} is not <image>=sha256:<64 hex>")
        digests[name] = digest
    return digests


def pin_images(stack_file: Path, tag: str, digests: dict[str, str] | None = None) -> dict[str, str]:
    """Set every image of `stack_file` to `<repository>:<tag>`, plus `@<digest>` when
    `digests` is given (then every image needs one); returns the new images."""
    if not TAG.match(tag):
        raise ValueError(f"--tag: {tag!r} is not a valid image tag")
    document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    images = document.get("config", {}).get(IMAGES_KEY)
    if not isinstance(images, dict) or not images:
        raise ValueError(f"{stack_file}: config.{IMAGES_KEY}: expected a mapping of images")
    if digests is not None and set(digests) != set(images):
        raise ValueError(
            f"--digests: expected one digest for each of {sorted(images)}, got {sorted(digests)}"
        )
    pinned = {
        name: f"{re.split('[:@]', image, maxsplit=1)[0]}:{tag}"
        + (f"@{digests[name]}" if digests is not None else "")
        for name, image in images.items()
    }
    document["config"][IMAGES_KEY] = pinned
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: dev or prod")
    parser.add_argument("--tag", required=True, help="image tag, e.g. the git sha")
    parser.add_argument(
        "--digests", help="image=sha256:<digest>,... for every image: pin by digest too"
    )
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    args = parser.parse_args(argv)
    stack_file = args.root / f"Pulumi.{args.stack}.yaml"
    if not stack_file.is_file():
        print(f"pin_images: {stack_file} does not exist", file=sys.stderr)
        return 2
    try:
        digests = parse_digests(args.digests) if args.digests is not None else None
        pinned = pin_images(stack_file, args.tag, digests)
    except ValueError as error:
        print(f"pin_images: {error}", file=sys.stderr)
        return 2
    for name, image in pinned.items():
        print(f"{args.stack}: {name} = {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
