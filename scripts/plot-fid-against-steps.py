#!/usr/bin/python3
"""Draws the CSV of scripts/fid-against-steps.sh as a PNG: FID (left axis) and KID x 1000
(right axis) against training steps, with labelled axes. Needs Pillow (python3-pil).

  /usr/bin/python3 scripts/plot-fid-against-steps.py fid-against-steps.csv docs/images/fid-against-steps.png [TITLE]
"""
import csv
import sys

from PIL import Image, ImageDraw


def main():
    source, target = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "FID and KID of the EMA model against training steps"
    rows = [r for r in csv.DictReader(open(source)) if r["fid"]]
    steps = [int(r["step"]) for r in rows]
    fid = [float(r["fid"]) for r in rows]
    kid = [1000 * float(r["kid"]) for r in rows]
    width, height, left, right, top, bottom = 720, 400, 60, 70, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = width - left - right, height - top - bottom
    x_max = max(steps) * 1.02
    fid_max, kid_max = max(fid) * 1.1, max(max(kid) * 1.1, 1e-9)

    def x_of(step):
        return left + step / x_max * plot_w

    def y_of(value, top_value):
        return top + plot_h - max(value, 0) / top_value * plot_h

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline=(150, 150, 150))
    for k in range(6):  # ticks
        step = x_max * k / 5
        draw.text((x_of(step) - 12, top + plot_h + 6), f"{step:.0f}", fill="black")
        draw.text((8, y_of(fid_max * k / 5, fid_max) - 6), f"{fid_max * k / 5:.1f}", fill=(20, 40, 160))
        draw.text((left + plot_w + 8, y_of(kid_max * k / 5, kid_max) - 6), f"{kid_max * k / 5:.1f}", fill=(220, 110, 20))
    draw.text((left + plot_w / 2 - 40, height - 22), "training step", fill="black")
    draw.text((left, 12), title, fill="black")
    draw.text((left + plot_w - 150, top + 6), "FID (left)", fill=(20, 40, 160))
    draw.text((left + plot_w - 150, top + 20), "KID x 1000 (right)", fill=(220, 110, 20))
    for values, top_value, colour in ((fid, fid_max, (20, 40, 160)), (kid, kid_max, (220, 110, 20))):
        points = [(x_of(s), y_of(v, top_value)) for s, v in zip(steps, values)]
        draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    image.save(target)
    print(f"wrote {target} ({len(rows)} points)")


if __name__ == "__main__":
    main()
