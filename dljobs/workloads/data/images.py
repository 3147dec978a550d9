"""Image folders: one subdirectory per class, read with Pillow into (N, C, H, W) floats in [0, 1]."""

from __future__ import annotations

import io

import numpy as np

from dljobs.workloads.data.raw import RawData
from dljobs.workloads.data.sources import IMAGE_EXTENSIONS, SOURCE_FIELD, Location
from dljobs.workloads.errors import WorkloadError

GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def read_image_folder(
    location: Location, *, image_size: int | None, needs_labels: bool, identity: dict[str, object]
) -> RawData:
    """Every image under `location`; its class is the name of the first directory below the root.

    Images are resized to `image_size` x `image_size` when it is set; otherwise they must all share one
    size. All-grey folders give one channel, anything else three (RGB).
    """
    from PIL import Image, UnidentifiedImageError

    files = [f for f in location.list_files() if f.path.lower().endswith(IMAGE_EXTENSIONS)]
    if not files:
        raise WorkloadError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) under '{location.url}'", field=SOURCE_FIELD
        )
    classes = [
        location.relative(f.path).split("/")[0] if "/" in location.relative(f.path) else None for f in files
    ]
    if needs_labels and any(c is None for c in classes):
        loose = next(location.relative(f.path) for f, c in zip(files, classes, strict=True) if c is None)
        raise WorkloadError(
            f"'{loose}' lies directly in '{location.url}': put each class's images in a subdirectory "
            "named after the class",
            field=SOURCE_FIELD,
        )
    images = []
    for info in files:
        try:
            image = Image.open(io.BytesIO(location.read_bytes(info.path)))
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise WorkloadError(
                f"'{location.relative(info.path)}' is not a readable image: {exc}", field=SOURCE_FIELD
            ) from exc
        images.append(image)
    grey = all(image.mode in GREY_MODES for image in images)
    arrays = []
    first_size, first_name = None, ""
    for info, image in zip(files, images, strict=True):
        image = image.convert("L" if grey else "RGB")
        if image_size is not None:
            image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
        elif first_size is None:
            first_size, first_name = image.size, location.relative(info.path)
        elif image.size != first_size:
            raise WorkloadError(
                f"images differ in size ('{first_name}' is {first_size[0]}x{first_size[1]}, "
                f"'{location.relative(info.path)}' is {image.size[0]}x{image.size[1]}): set data.image_size "
                "to resize them all",
                field="data.image_size",
            )
        array = np.asarray(image, dtype=np.float32) / 255.0
        arrays.append(array[None] if grey else array.transpose(2, 0, 1))
    labels = np.asarray(classes, dtype=str) if all(c is not None for c in classes) else None
    return RawData(input_kind="image", identity=identity, inputs=np.stack(arrays), labels=labels)
