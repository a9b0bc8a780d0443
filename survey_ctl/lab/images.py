"""The lab's images, made without any registry and cached by what they are made from.

A rootfs image is a Debian root made by `debootstrap` and turned into an image with
`docker import`; a built image is a Dockerfile of `stacks/` on top of one. Each image
carries a label with the hash of its inputs; a matching image is reused, any other
is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from survey_ctl.errors import LabError
from survey_ctl.lab.spec import (
    CACHE_DIR,
    IMAGES,
    LABEL_IMAGE,
    LABEL_KEY,
    MIRROR,
    RELEASE,
    BuiltImage,
    RootfsImage,
)

if TYPE_CHECKING:
    import docker

    from survey_ctl.lab.progress import Steps

ROOTFS_FORMAT = 1  # bump when the way a rootfs is made changes
WORK_ROOT = Path("/var/tmp")  # noqa: S108  (a disk, not a tmpfs; names are unpredictable)
WORK_PREFIX = "surveyctl-lab-rootfs-"
# Left out of the imported roots: package caches and lists, docs, man pages, locales.
TAR_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*_*",
    "./usr/share/doc/*",
    "./usr/share/man/*",
    "./usr/share/locale/*",
    "./proc/*",
    "./sys/*",
)


def rootfs_key(rootfs: RootfsImage) -> str:
    """Hash of everything a rootfs image is made from."""
    inputs = {
        "format": ROOTFS_FORMAT,
        "release": RELEASE,
        "mirror": MIRROR,
        "packages": sorted(rootfs.packages),
        "excludes": TAR_EXCLUDES,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def context_key(context: Path, base_id: str) -> str:
    """Hash of a build context's files and of the base image it builds on."""
    digest = hashlib.sha256(base_id.encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_image(client: docker.DockerClient, tag: str, key: str):
    """The image tagged `tag` if it was made from inputs with hash `key`, else None."""
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return image if (image.labels or {}).get(LABEL_KEY) == key else None


def ensure_images(client: docker.DockerClient, steps: Steps, stacks: Path) -> None:
    """Make every lab image that is missing or stale, a few at a time."""
    remove_stale_workdirs()
    rootfs = {i.rootfs for i in IMAGES}
    stale = [r for r in rootfs if cached_image(client, r.tag, rootfs_key(r)) is None]
    if stale:
        with steps.step("download Debian packages") as step:
            packages = sorted({p for r in stale for p in r.packages})
            step.note(f"{len(packages)} packages and their dependencies")
            _download_debs(packages)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(_ensure_built, client, steps, stacks, i) for i in IMAGES]
        for future in futures:
            future.result()


def _ensure_built(client, steps: Steps, stacks: Path, image: BuiltImage) -> None:
    with steps.step(f"image {image.tag}") as step:
        base = _ensure_rootfs(client, image.rootfs, step)
        context = stacks / image.context
        key = context_key(context, base.id)
        if cached_image(client, image.tag, key) is not None:
            step.note("cached")
            return
        step.note(f"docker build {image.context}/{image.dockerfile}")
        _build(client, image, context, key)
        step.note("built")


def _ensure_rootfs(client, rootfs: RootfsImage, step):
    key = rootfs_key(rootfs)
    image = cached_image(client, rootfs.tag, key)
    if image is not None:
        return image
    step.note(f"debootstrap {RELEASE} + {', '.join(rootfs.packages)}")
    workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX + rootfs.name + "-", dir=WORK_ROOT))
    try:
        _debootstrap(rootfs.name, rootfs.packages, workdir / "root", workdir / "log")
        step.note("docker import")
        _import(client, rootfs, workdir / "root", key)
    finally:
        remove_workdir(workdir)
    return client.images.get(rootfs.tag)


def _download_debs(packages: list[str]) -> None:
    """Fill the shared .deb cache once, so that parallel debootstraps only read it."""
    workdir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX + "download-", dir=WORK_ROOT))
    try:
        _debootstrap("download", packages, workdir / "root", workdir / "log", ["--download-only"])
    finally:
        remove_workdir(workdir)


def _debootstrap(
    name: str, packages, target: Path, log_path: Path, extra: list[str] | None = None
) -> None:
    debs = CACHE_DIR / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        *(extra or []),
        f"--include={','.join(packages)}",
        f"--cache-dir={debs}",
        RELEASE,
        str(target),
        MIRROR,
    ]
    with open(log_path, "wb") as log:
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        kept = CACHE_DIR / f"debootstrap-{name}.log"
        shutil.copyfile(log_path, kept)
        raise LabError(
            f"debootstrap ({name}) failed: {' | '.join(tail)}",
            f"full log in {kept}; check that {MIRROR} is reachable, then run `lab up` again",
        )


def _import(client, rootfs: RootfsImage, root: Path, key: str) -> None:
    repository, tag = rootfs.tag.rsplit(":", 1)
    argv = ["tar", "--numeric-owner", "-C", str(root)]
    argv += [f"--exclude={pattern}" for pattern in TAR_EXCLUDES]
    argv += ["-c", "."]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as tar:
        client.api.import_image(
            src=tar.stdout,
            repository=repository,
            tag=tag,
            changes=[
                f"LABEL {LABEL_IMAGE}=1 {LABEL_KEY}={key}",
                'CMD ["/bin/bash"]',
            ],
            stream_src=True,
        )
    if tar.returncode != 0:
        raise LabError(f"tar of the {rootfs.name} root failed", "run `lab up` again")


def _build(client, image: BuiltImage, context: Path, key: str) -> None:
    import docker

    try:
        client.images.build(
            path=str(context),
            dockerfile=image.dockerfile,
            tag=image.tag,
            buildargs={"BASE_IMAGE": image.rootfs.tag},
            labels={LABEL_IMAGE: "1", LABEL_KEY: key},
            network_mode="none",
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as exc:
        lines = [c.get("stream", c.get("error", "")).strip() for c in exc.build_log]
        tail = " | ".join(line for line in lines if line)[-400:]
        raise LabError(
            f"building {image.tag} from stacks/{image.context}/{image.dockerfile} failed: {tail}",
            "fix the Dockerfile, then run `lab up` again",
        ) from None


def remove_workdir(workdir: Path) -> None:
    """Remove a debootstrap work folder, unmounting anything left mounted inside first."""
    prefix = str(workdir.resolve()) + "/"
    mounts = [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    if any(
        line.split()[1].startswith(prefix) for line in Path("/proc/mounts").read_text().splitlines()
    ):
        return  # never delete through a mount
    shutil.rmtree(workdir, ignore_errors=True)


def remove_stale_workdirs() -> None:
    """Remove work folders an interrupted `lab up` left behind."""
    for workdir in WORK_ROOT.glob(WORK_PREFIX + "*"):
        if workdir.is_dir() and not _in_use(workdir):
            remove_workdir(workdir)


def _in_use(workdir: Path) -> bool:
    """True while a process (an orphaned debootstrap, say) still names `workdir`."""
    needle = str(workdir).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def remove_images(client: docker.DockerClient) -> list[str]:
    """Remove every image the lab made, and its download cache; returns the tags removed."""
    import docker

    removed: list[str] = []
    ordered = [i.tag for i in IMAGES] + sorted({i.rootfs.tag for i in IMAGES})
    for tag in ordered:
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            continue
        if (image.labels or {}).get(LABEL_IMAGE) != "1":
            continue
        client.images.remove(tag, force=True)
        removed.append(tag)
    prune_superseded(client)
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
    return removed


def prune_superseded(client: docker.DockerClient) -> list[str]:
    """Remove the lab's untagged images (superseded by a rebuild and no longer used)."""
    result = client.images.prune(filters={"dangling": True, "label": f"{LABEL_IMAGE}=1"})
    return [d["Deleted"] for d in result.get("ImagesDeleted") or [] if "Deleted" in d]
