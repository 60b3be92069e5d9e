"""The e2e baseline: muon's infer job written with Beam Python.

Reads the records muon's bench put into Kafka, dumped to a file of one
message value per line (the sensor JSON: device, ts, values, label),
decodes them, takes the 64 "Block i" pixel counts, standardizes them with
the training split's statistics, scores them with Beam's RunInference and a
scikit-learn MLPClassifier (one hidden layer of 100 relu units, the task
muon's digits model does), and writes one prediction JSON per record (id,
device, time, label, class scores, truth). DirectRunner.

The model is trained on optdigits.tra before the pipeline starts; only the
pipeline run is timed. Prints one JSON line: records, seconds, accuracy.

    python beam_infer.py --train optdigits.tra --input records.jsonl --output DIR
"""

import argparse
import resource
import ast
import json
import os
import pickle
import sys
import tempfile
import time
import warnings

import numpy as np
import apache_beam as beam
from apache_beam.ml.inference.base import RunInference
from apache_beam.ml.inference.sklearn_inference import ModelFileType, SklearnModelHandlerNumpy
from apache_beam.options.pipeline_options import PipelineOptions
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

NAMES = ["Block %d" % i for i in range(1, 65)]


def train(path, model_file):
    data = np.loadtxt(path, delimiter=",", skiprows=1)  # a header row names the columns
    x, y = data[:, :64], data[:, 64].astype(int)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1
    clf = MLPClassifier(hidden_layer_sizes=(100,), activation="relu", solver="adam",
                        batch_size=32, max_iter=30, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 30 epochs, as muon's digits model
        clf.fit((x - mean) / std, y)
    with open(model_file, "wb") as f:
        pickle.dump(clf, f)
    return mean, std


class Decode(beam.DoFn):
    """A message value to (id, device, time, truth) and its standardized row."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def process(self, line):
        m = json.loads(line)
        v = m["values"]
        row = (np.array([v[n] for n in NAMES], dtype=np.float64) - self.mean) / self.std
        yield (m["device"], m["ts"], m.get("label", "")), row


class Format(beam.DoFn):
    def process(self, kv):
        (device, ts, truth), result = kv
        scores = result.inference
        label = int(np.argmax(scores))
        yield json.dumps({"id": device + "@" + ts, "key": device, "time": ts, "label": str(label),
                          "scores": {str(i): float(s) for i, s in enumerate(scores)}, "truth": truth}), \
            str(label) == truth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--workers", type=int, default=1, help="DirectRunner workers (processes when more than one)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="muon-beam-python-")
    model_file = os.path.join(work, "model.pkl")
    mean, std = train(a.train, model_file)
    handler = SklearnModelHandlerNumpy(model_uri=model_file, model_file_type=ModelFileType.PICKLE,
                                       inference_fn=lambda model, batch, inference_args=None:
                                       model.predict_proba(np.stack(batch)))
    if a.workers > 1:
        opts = PipelineOptions(runner="DirectRunner", direct_num_workers=a.workers, direct_running_mode="multi_processing")
    else:
        opts = PipelineOptions(runner="DirectRunner", direct_num_workers=1)
    begin = time.time()
    cpu0 = cpu()
    with beam.Pipeline(options=opts) as p:
        out = (p
               | beam.io.ReadFromText(a.input)
               | beam.ParDo(Decode(mean, std))
               | RunInference(beam.ml.inference.base.KeyedModelHandler(handler))
               | beam.ParDo(Format()))
        _ = out | "Json" >> beam.Map(lambda t: t[0]) | "WritePredictions" >> beam.io.WriteToText(os.path.join(a.output, "predictions"))
        _ = (out | "Correct" >> beam.Map(lambda t: (int(t[1]), 1))
             | beam.combiners.Count.PerKey()
             | "WriteCorrect" >> beam.io.WriteToText(os.path.join(a.output, "correct")))
    seconds = time.time() - begin
    cpu_seconds = cpu() - cpu0
    right = wrong = 0
    for name in os.listdir(a.output):
        if name.startswith("correct"):
            for line in open(os.path.join(a.output, name)):
                k, n = ast.literal_eval(line)  # the (1, count) tuples Beam wrote
                right, wrong = (right + n, wrong) if k else (right, wrong + n)
    print(json.dumps({"records": right + wrong, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "accuracy": right / max(1, right + wrong)}))


def cpu():
    """User and system CPU seconds of this process and its waited-for children (the workers)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


if __name__ == "__main__":
    sys.exit(main())
