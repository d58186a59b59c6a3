"""Speech synthesis with eSpeak NG (the library and voices inside the ``espeakng-loader`` wheel).

A thin ctypes binding: synchronous synthesis into a callback that collects 16-bit samples.
Nothing is downloaded; if the library cannot be loaded, ``SynthesisUnavailable`` says why.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class SynthesisUnavailable(RuntimeError):
    pass


class ESpeak:
    """One process-wide eSpeak NG instance (the C library keeps global state)."""

    _instance: "ESpeak | None" = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise SynthesisUnavailable("speech synthesis needs the espeakng-loader package "
                                       "(pip install 'denoiselab[demo]')") from None
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise SynthesisUnavailable(f"eSpeak NG could not be loaded on this platform: {exc}") from None
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if rate <= 0:
            raise SynthesisUnavailable(f"eSpeak NG failed to initialise (data path {data})")
        self.sample_rate = int(rate)
        # eSpeak draws its frication/aspiration noise from its own generator and libc's rand():
        # seeding both per utterance makes synthesis reproducible.
        self._libc = ctypes.CDLL(None)
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, events):  # noqa: ANN001
            if n > 0 and wav:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(collect)  # keep a reference: the C side holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "ESpeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def synth(self, text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50, pitch_range: int = 50,
              seed: int = 0) -> np.ndarray:
        """float32 samples in [-1, 1] at ``self.sample_rate`` (22.05 kHz for the shipped voices)."""
        with self._lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self.lib.espeak_SetParameter(ESPEAK_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(ESPEAK_PITCH, int(pitch), 0)
            self.lib.espeak_SetParameter(ESPEAK_RANGE, int(pitch_range), 0)
            self.lib.espeak_SetParameter(ESPEAK_VOLUME, 100, 0)
            self._chunks = []
            self._libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
            if hasattr(self.lib, "espeak_ng_SetRandSeed"):
                self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
            buf = text.encode("utf-8") + b"\0"
            err = self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            if err != 0:
                raise RuntimeError(f"eSpeak NG synthesis failed with code {err}")
            pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0
