#!/usr/bin/env python3
"""Derives the WordNet hierarchy above the 1000 ImageNet (ILSVRC-2012) classes, for
Sightline's hierarchical labels (Sources/SightlineModels/Resources/imagenet-hierarchy.tsv).

Inputs, both Debian packages (Scripts/setup installs them):
  - darknet:       /usr/share/darknet/data/imagenet.labels.list — ImageNet ids (WordNet noun
                   offsets, "n" + 8 digits); its first 1000 lines are the ILSVRC-2012 classes;
  - wordnet-base:  /usr/share/wordnet/data.noun — WordNet 3.0 noun synsets, whose byte offsets
                   are those ids, with their hypernym pointers ("@", and "@i" for instances).

The standard class order (the one models are trained with) is the sorted ids. Output, one row
per synset: the 1000 classes first in class order, then every ancestor in order of first
appearance; columns, tab-separated:
  wnid   name (first lemma, "_" as spaces)   parents (row numbers, comma-separated)   nameable (1/0)
A synset is "nameable" unless it is on TOO_GENERAL below: concepts that cover much of the
label set or are technical terms, which a caption should not say ("an artifact", "a
placental"). Probability mass still flows through them.

Usage: python3 Scripts/wordnet/imagenet_hierarchy.py > Sources/SightlineModels/Resources/imagenet-hierarchy.tsv
A test (ImageNetHierarchyTests) runs this and compares the output with the committed file.
"""
import sys

LABELS = "/usr/share/darknet/data/imagenet.labels.list"
NOUNS = "/usr/share/wordnet/data.noun"

# By WordNet id. The first group covers 35 % or more of the 1000 classes; the second are
# technical or vague names that would read badly in a caption.
TOO_GENERAL = {
    "n00001740",  # entity
    "n00001930",  # physical entity
    "n00002684",  # object
    "n00003553",  # whole
    "n00021939",  # artifact
    "n00004258",  # living thing
    "n00004475",  # organism
    "n03575240",  # instrumentality
    "n01466257",  # chordate
    "n01471682",  # vertebrate
    "n01886756",  # placental
    "n00020827",  # matter
    "n03076708",  # commodity
    "n03093574",  # consumer goods
    "n03122748",  # covering
    "n04014297",  # protective covering
    "n00019613",  # substance
    "n09287968",  # geological formation
    "n00019128",  # natural object
    "n03129123",  # creation
    "n08578706",  # geographic point
    "n00027167",  # location
}


def read_nouns():
    synsets = {}
    with open(NOUNS, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ")[0].split()
            offset, count = fields[0], int(fields[3], 16)
            words = [fields[4 + 2 * i] for i in range(count)]
            i = 4 + 2 * count
            pointers = int(fields[i])
            parents = []
            for k in range(pointers):
                symbol, target, pos, _ = fields[i + 1 + 4 * k:i + 5 + 4 * k]
                if symbol in ("@", "@i") and pos == "n":
                    parents.append(target)
            synsets[offset] = (words[0].replace("_", " "), parents)
    return synsets


def main():
    with open(LABELS) as f:
        ids = [line.strip() for line in f][:1000]
    if len(set(ids)) != 1000:
        sys.exit("imagenet_hierarchy: the label list does not start with 1000 distinct classes")
    classes = sorted(ids)
    synsets = read_nouns()
    rows, index = [], {}

    def add(offset):
        if offset not in index:
            index[offset] = len(rows)
            rows.append(offset)

    for wnid in classes:
        add(wnid[1:])
    # Ancestors, breadth first from each class, in class order.
    position = 0
    while position < len(rows):
        for parent in synsets[rows[position]][1]:
            add(parent)
        position += 1
    for offset in rows:
        name, parents = synsets[offset]
        nameable = "0" if "n" + offset in TOO_GENERAL else "1"
        print(f"n{offset}\t{name}\t{','.join(str(index[p]) for p in parents)}\t{nameable}")


if __name__ == "__main__":
    main()
