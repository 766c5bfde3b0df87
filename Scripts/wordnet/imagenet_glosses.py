#!/usr/bin/env python3
"""Writes the WordNet gloss of each of the 1000 ImageNet (ILSVRC-2012) classes, in class order,
for the learned visual-to-text alignment (Sources/SightlineModels/Resources/imagenet-glosses.tsv).

The alignment pairs each class's classifier weight row with the MiniLM embedding of the class's
name and gloss ("tench: freshwater dace-like game fish of Europe ..."); the gloss tells the text
model what the name means where the name alone is rare or ambiguous ("crane", "drake").

Inputs, both Debian packages (Scripts/setup installs them): darknet's ImageNet id list (its first
1000 lines are the classes; the sorted ids are the class order) and wordnet-base's data.noun
(the gloss is the text after " | " on the synset's line, up to the first example quote).

Usage: python3 Scripts/wordnet/imagenet_glosses.py > Sources/SightlineModels/Resources/imagenet-glosses.tsv
A test (VisualTextAlignmentTests) runs this and compares the output with the committed file.
"""
import sys

LABELS = "/usr/share/darknet/data/imagenet.labels.list"
NOUNS = "/usr/share/wordnet/data.noun"


def main():
    with open(LABELS) as f:
        ids = [line.strip() for line in f][:1000]
    if len(set(ids)) != 1000:
        sys.exit("imagenet_glosses: the label list does not start with 1000 distinct classes")
    glosses = {}
    with open(NOUNS, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:
                continue
            offset = line.split(" ", 1)[0]
            gloss = line.split(" | ", 1)[1].strip()
            # Examples follow the definition as '; "..."'; keep the definition only.
            gloss = gloss.split('; "')[0].split(' "')[0].strip().rstrip(";").strip()
            glosses[offset] = " ".join(gloss.split())
    for wnid in sorted(ids):
        gloss = glosses.get(wnid[1:])
        if not gloss:
            sys.exit(f"imagenet_glosses: no gloss for {wnid}")
        print(f"{wnid}\t{gloss}")


if __name__ == "__main__":
    main()
