"""Reading tracking datasets (DTB70, OTB, UAV123, GOT-10k, LaSOT, plain folders, folders of video files) and
making synthetic ones.

Reading uses numpy and OpenCV only. Typical use::

    from edgetrack.data import open_dataset
    ds = open_dataset("path/to/DTB70")           # format detected from the files
    for seq in ds:
        first = seq.frame(0)                       # BGR uint8, read lazily with cv2.imread
        box = seq.init_box                         # (x, y, w, h) of frame 0
        seq.gt                                     # (N, 4) float64, NaN rows where the target is absent
"""
from .attributes import DTB70_ATTRIBUTES, DTB70_CODES, read_attribute_dir
from .gtfile import format_boxes, parse_boxes, read_boxes, read_flags, write_boxes
from .readers import (
    FORMATS,
    OTB_FRAME_RANGES,
    detect_format,
    open_dataset,
    read_dtb70,
    read_folder,
    read_got10k,
    read_lasot,
    read_otb,
)
from .sequence import Dataset, Sequence
from .sources import source_of
from .synthetic import EVENTS, make_sequence, synthetic_sequence, write_dataset
from .uav123 import UAV123_RANGES, parse_config_seqs, read_uav123
from .videofile import VIDEO_SUFFIXES, VideoFrames, probe_video
from .videos import VideoSequence, read_manifest, read_video_pool, read_videos, training_sources

__all__ = [
    "DTB70_ATTRIBUTES", "DTB70_CODES", "EVENTS", "FORMATS", "OTB_FRAME_RANGES", "UAV123_RANGES",
    "VIDEO_SUFFIXES", "Dataset", "Sequence", "VideoFrames", "VideoSequence", "detect_format", "format_boxes",
    "make_sequence", "open_dataset", "parse_boxes", "parse_config_seqs", "probe_video", "read_attribute_dir",
    "read_boxes", "read_dtb70", "read_flags", "read_folder", "read_got10k", "read_lasot", "read_manifest",
    "read_otb", "read_uav123", "read_video_pool", "read_videos", "source_of", "synthetic_sequence",
    "training_sources", "write_boxes", "write_dataset",
]
