"""The seed service's classifier, as the original Python computes it.

Reads a JSON list of texts on stdin and writes a JSON list of
[sentiment, confidence] pairs on stdout. Used by the differential test in
seedlexicon_test.go to compare v1 with Python answer for answer.
"""
import json
import re
import sys

POSITIVE = {"good", "great", "excellent", "amazing", "wonderful", "fantastic", "love", "best", "perfect",
            "awesome", "incredible", "outstanding", "brilliant", "superb", "magnificent", "impressive", "lovely"}
NEGATIVE = {"bad", "terrible", "awful", "horrible", "poor", "worst", "hate", "disappointing", "disappointed",
            "sad", "angry", "frustrating", "useless", "pathetic", "disgusting", "miserable", "dreadful"}


def analyze(text):
    words = set(re.findall(r"\b[a-z]+\b", text.lower()))
    pos = len(words & POSITIVE)
    neg = len(words & NEGATIVE)
    if pos > neg:
        sentiment, confidence = "positive", min(0.95, 0.6 + 0.1 * pos)
    elif neg > pos:
        sentiment, confidence = "negative", min(0.95, 0.6 + 0.1 * neg)
    else:
        sentiment, confidence = "neutral", 0.5 + 0.01 * len(words)
    return [sentiment, round(min(confidence, 0.95), 2)]


json.dump([analyze(t) for t in json.load(sys.stdin)], sys.stdout)
