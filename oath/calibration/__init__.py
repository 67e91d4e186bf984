"""Raw frames against the data set's own images: fit the raw-to-OATH conversion and check it.

Fit the raw-frame -> OATH-image conversion against the data set's own images, and check it.

``classify`` turns raw THEMIS frames into OATH-like images by a crop, a counts -> 0-255 scaling
and a site angle (:class:`oath.archive.conversion.Conversion`); OATH's ``cropped_scaled`` PNGs were
made from raw frames by a procedure that is not published. ``images/files_origin.csv`` names the
station and time of every image, so each image can be put beside its raw frame and the
conversion fitted, per site, and checked:

1. :func:`match_frames`: every image of the data set to the raw frame of its station nearest in
   time (within ``tolerance_s``, the imager's 3-s cadence), read with the readers classify uses
   (stream0 ``*_full.pgm.gz`` through pyucalgarysrs, L1 ASF CDF through cdflib). An image
   without a frame is listed with the reason (bad files_origin.csv row, unknown station, no
   raw file, unreadable raw file, no frame within the tolerance), never a crash.
2. :func:`fit_conversion`: per site, on split 0's training images only: the orientation (the
   eight turns and mirrors of the square frame), the crop window (to the pixel, by the
   correlation of the raw frame with the PNG over the PNG's unclipped sky pixels; the crop
   radius is half the PNG's side, as :func:`oath.archive.conversion.frame_to_oath` makes it), then
   the scaling, chosen between the families classify has, a fixed linear counts window (least
   squares over all training pixels of the site that are not clipped) and a per-frame
   percentile stretch (each frame's window by least squares, then the median percentile rank
   of its ends), by the mean absolute grey-level residual on a validation part of the training
   images (every fourth); sites that chose one family share one scaling fitted on all of them
   (:func:`pool_scalings`). The residual reported is that of split 0's held-out images.
3. :func:`measure_agreement`: the ridge model fitted on the PNG features of split 0's training
   part labels the held-out images from OATH's PNGs and from their raw frames through the
   fitted and the default conversion (classify's streamed extraction, the same checkpoint).

Where the user has no raw files, :func:`fetch_raw_files` downloads exactly the stream0 minute
files the images need with pyucalgarysrs. No step reads how the demo made its PNGs
(:mod:`oath.demo.dataset` keeps that); tests compare.

Modules, in the order the workflow runs them:

- :mod:`~oath.calibration.match`: images to raw frames (rule match_raw_frames, fetch_raw_frames).
- :mod:`~oath.calibration.fit`: the conversion of one site.
- :mod:`~oath.calibration.output`: every site of the data set, conversion.yaml, the triplet
  sheet (rule fit_conversion).
- :mod:`~oath.calibration.agreement`: the labels of both routes (rule measure_agreement).
"""
