#!/usr/bin/env python3
"""Renders the text analyzer's test set, the same every time (a fixed seed):

    testset.py OUT_DIR PHOTOS_DIR TRUTH_JSON

OUT_DIR gets `text-NN.jpg`, photos and plain grounds with words rendered on them
(four DejaVu fonts, 20 to 64 pixels, dark on light, light on dark and colours, at
0°, 90°, 180° and 270°, slanted up to 10°, some blurred), a copy of each photo of
PHOTOS_DIR (none of which has words); TRUTH_JSON each file's words, in order.
Needs Pillow and Debian's fonts-dejavu-core.
"""
import json
import os
import random
import shutil
import sys

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONTS = "/usr/share/fonts/truetype/dejavu"
FACES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]
WORDS = """exit invoice total station north south platform open closed coffee menu parking
entrance receipt monday friday bakery market street avenue museum hotel pharmacy library
garden tickets departures arrivals welcome private danger stop slow airport taxi bus
london paris berlin tokyo harbour bridge river castle theatre cinema gallery kitchen
breakfast lunch dinner price cash card change sale discount summer winter meeting agenda
project report budget 2024 2019 1999 42 17 300""".split()
COLOURS = [((20, 20, 20), (245, 245, 240)), ((250, 250, 250), (30, 40, 60)), ((200, 30, 30), (250, 240, 220)),
           ((10, 60, 160), (230, 230, 230)), ((255, 220, 0), (20, 20, 20)), ((0, 110, 50), (240, 250, 240))]
ANGLES = [0, 0, 0, 0, 90, 180, 270]


def main():
    out, photos, truth_path = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(46)
    grounds = sorted(f for f in os.listdir(photos) if f.lower().endswith((".jpg", ".png")))
    truth = {}
    for i in range(36):
        words_per_line = [rng.randint(1, 3) for _ in range(rng.randint(1, 3))]
        lines = [[rng.choice(WORDS) for _ in range(n)] for n in words_per_line]
        size = rng.choice([20, 26, 32, 40, 48, 64])
        font = ImageFont.truetype(os.path.join(FONTS, FACES[i % len(FACES)]), size)
        ink, paper = COLOURS[i % len(COLOURS)]
        if i % 3 == 2:
            # Over a photo: the words with a stroke of the paper's colour, as signs
            # and captions over pictures are.
            ground = Image.open(os.path.join(photos, grounds[i % len(grounds)])).convert("RGB")
            image = ground.resize((640, 480))
            stroke = 2
        else:
            image = Image.new("RGB", (640, 480), paper)
            stroke = 0
        draw = ImageDraw.Draw(image)
        y = rng.randint(20, 60)
        for line in lines:
            upper = rng.random() < 0.3
            while True:
                text = " ".join(line).upper() if upper else " ".join(line).capitalize()
                width = draw.textlength(text, font=font)
                if width <= 600 or len(line) == 1:
                    break
                line.pop()  # a line wider than the picture loses its last word
            x = rng.randint(10, max(10, int(640 - width - 10)))
            draw.text((x, y), text, font=font, fill=ink, stroke_width=stroke, stroke_fill=paper)
            y += int(size * 1.8)
        angle = ANGLES[i % len(ANGLES)]
        if angle:
            image = image.rotate(angle, expand=True)
        elif i % 5 == 1:
            # Slanted, as a sign photographed a little askew.
            image = image.rotate(rng.uniform(-10, 10), expand=True, fillcolor=paper, resample=Image.BICUBIC)
        if i % 4 == 3:
            image = image.filter(ImageFilter.GaussianBlur(1.0))
        name = f"text-{i:02d}.jpg"
        image.save(os.path.join(out, name), quality=90)
        truth[name] = [w for line in lines for w in line]
    for ground in grounds:
        shutil.copyfile(os.path.join(photos, ground), os.path.join(out, ground))
        truth[ground] = []
    with open(truth_path, "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
