#!/usr/bin/env python3
# Prints, for each broken plan here, where PyYAML (the reference parser)
# places its error: "FILE LINE:COLUMN". expected.txt is its output (plus
# the duplicate keys, which PyYAML accepts and migrun's loader refuses at
# the second key, as the YAML spec's unique keys and goccy/go-yaml do).
# An unclosed quote is placed where the quote opened (PyYAML's context
# mark; its problem mark is the end of the file).
import glob, os, yaml
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "*.yaml"))):
    name = os.path.basename(f)
    try:
        yaml.safe_load(open(f, "rb"))
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark
        if "end of stream" in (e.problem or "") and e.context_mark is not None:
            m = e.context_mark
        print(f"{name} {m.line + 1}:{m.column + 1}")
    except yaml.reader.ReaderError as e:
        data = open(f, "rb").read()[: e.position]
        line = data.count(b"\n") + 1
        col = len(data.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")) + 1
        print(f"{name} {line}:{col}")
