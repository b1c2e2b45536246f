"""Rebuild the statement font: Noto Sans CJK SC cut down to the characters a statement can print.

Run with the source collection (Debian's ``fonts-noto-cjk`` ships it, so does the noto-cjk
release on GitHub)::

    python billing/fonts/make_subset.py /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

Shop names, invoice titles and addresses are typed by merchants, so the cut keeps every
character of GB 2312 (the 6,763 common hanzi and its punctuation) besides ASCII, Latin-1 and
the CJK and full-width punctuation blocks, not only the characters of the template.
"""

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

SIMPLIFIED_CHINESE = 2  # the face's index in NotoSansCJK-Regular.ttc
OUTPUT = Path(__file__).with_name("NotoSansSC-Statement.otf")
BLOCKS = (
    range(0x20, 0x7F),  # ASCII
    range(0xA0, 0x100),  # Latin-1: ¥, ×, ·
    range(0x2000, 0x2070),  # general punctuation: – — ‘’ “” …
    range(0x3000, 0x3040),  # CJK symbols and punctuation: 、。《》「」【】
    range(0xFF00, 0xFFF0),  # full-width forms: ，：；（）
)


def characters() -> set[int]:
    wanted = {code for block in BLOCKS for code in block}
    for code in range(0x80, 0x10000):
        try:
            chr(code).encode("gb2312")
        except UnicodeEncodeError:
            continue
        wanted.add(code)
    return wanted


def main(source: str) -> None:
    font = TTCollection(source).fonts[SIMPLIFIED_CHINESE]
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright and licence records
    options.notdef_outline = True
    # Statements are set horizontally in Simplified Chinese: no vertical metrics, vertical
    # alternates or the other regions' forms (locl).
    options.drop_tables += ["VORG", "vhea", "vmtx"]
    options.layout_features = [
        feature
        for feature in options.layout_features
        if feature not in {"locl", "vert", "vrt2", "vhal", "vkrn", "vpal", "valt", "vchw", "vjmo"}
    ]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=characters())
    subsetter.subset(font)
    font.save(OUTPUT)
    print(f"{OUTPUT.name}: {len(font.getGlyphOrder())} glyphs, {OUTPUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
