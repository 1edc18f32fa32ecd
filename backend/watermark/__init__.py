"""The audio watermark every file, preview and stream voicegate synthesizes carries: Resemble AI's Perth-Net
(resemble-perth 1.0.1, MIT), an inaudible 1-bit mark in the spectrum's 0-2 kHz band that survives re-encoding
(MP3, Opus, AAC), resampling, the telephone band, gain and trimming, where a C2PA manifest does not.

The mark carries no payload: detecting it says "marked as synthetic by Perth-Net", which Resemble's own speech
and chatterbox's carry too, not "made by voicegate" (the C2PA manifest says that, while it is there).

voicegate makes the mark 1.5 times as strong as the library does (`STRENGTH`: found after noise at 20 dB SNR
95-97 % of the time on natural speech rather than 83 %), 2.5 times in unvoiced frames (`UNVOICED_STRENGTH`,
which Praat's PSOLA copies as they were), and detects it as the library does, then, where that misses, on the
audio's unvoiced frames at its own pitch, and on its loudest excerpts at its own pitch and at warps of it up to
210 cents either way (`WARPS`), which find it again after a pitch shift or a change of speed of up to two
semitones by sox, rubberband, Praat or a phase vocoder. A vocoder that makes the speech again (WORLD) leaves no
mark to find. The weights are read without torch (`weights`) into four ONNX graphs (`graph`) run by onnxruntime
on one thread (`network`), with the library's signal processing in numpy and scipy (`perth`). `mark` and `detect`
are pure CPU work, thread-safe, for the fair CPU executor.
"""

from backend.watermark.api import THRESHOLD, Detection, detect, mark

__all__ = ["THRESHOLD", "Detection", "detect", "mark"]
