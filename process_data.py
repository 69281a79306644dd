"""Make a training scene from your own photos or video: COLMAP through pycolmap.

    python process_data.py --images DIR --out SCENE
    python process_data.py --video FILE --out SCENE --num_frames 100
    python train.py --dataset_type colmap --datadir SCENE --factor 4 ...

Writes SCENE/images/ (copies of the photos, or the sampled video frames), SCENE/sparse/0/
(COLMAP's binary model: cameras, images, points3D), SCENE/images_{2,4,8}/ (INTER_AREA),
SCENE/database.db and SCENE/colmap.log. Prints how many images registered and the mean
reprojection error. SIFT and matching run on the CPU; nothing is downloaded. Needs
``pip install pycolmap==4.2.1``. The steps are in datasets/colmap_capture.py.
"""
import argparse

from datasets.colmap import SUPPORTED_MODELS
from datasets.colmap_capture import MATCHERS, process_capture
from utils.errors import UserError, run_cli


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message} (see python process_data.py --help)")


def main(argv=None) -> int:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of .png/.jpg/.jpeg photos of one scene, all the same size")
    src.add_argument("--video", help="video file; --num_frames frames are sampled evenly")
    p.add_argument("--out", required=True, help="scene folder to write (its images/ and sparse/ must not exist, "
                                                "unless --images is OUT/images)")
    p.add_argument("--num_frames", type=int, default=100, help="frames taken from --video")
    p.add_argument("--matcher", choices=MATCHERS, default=None,
                   help="exhaustive (default for --images) or sequential (default for --video)")
    p.add_argument("--min_registered", type=int, default=None,
                   help="fail unless this many images register (default: half of them, at least 3)")
    p.add_argument("--camera_model", choices=SUPPORTED_MODELS, default="SIMPLE_RADIAL",
                   help="COLMAP camera model shared by all images")
    p.add_argument("--max_features", type=int, default=8192, help="SIFT features per image")
    a = p.parse_args(argv)
    process_capture(a.out, images=a.images, video=a.video, num_frames=a.num_frames, matcher=a.matcher,
                    min_registered=a.min_registered, camera_model=a.camera_model, max_features=a.max_features)
    return 0


if __name__ == "__main__":
    run_cli(main)
