"""The paper's published scaled accuracies (Figures 7 and 8; mean over seeds, best learning rate) for the
tasks xseq generates, and the MQAR settings Figure 11 reports as solved."""

MODEL_NAMES = {"xlstm_0_1": "xLSTM[0:1]", "xlstm_1_0": "xLSTM[1:0]", "xlstm_1_1": "xLSTM[1:1]",
               "transformer": "Llama"}

FORMAL = {  # task -> paper model name -> scaled accuracy
    "bucket_sort": {"Llama": 0.92, "xLSTM[0:1]": 0.84, "xLSTM[1:0]": 0.97, "xLSTM[1:1]": 0.70},
    "missing_duplicate": {"Llama": 0.08, "xLSTM[0:1]": 0.23, "xLSTM[1:0]": 0.33, "xLSTM[1:1]": 0.20},
    "cycle_nav": {"Llama": 0.04, "xLSTM[0:1]": 1.00, "xLSTM[1:0]": 0.86, "xLSTM[1:1]": 0.80},
    "even_pairs": {"Llama": 1.00, "xLSTM[0:1]": 1.00, "xLSTM[1:0]": 1.00, "xLSTM[1:1]": 1.00},
    "mod_arithmetic": {"Llama": 0.03, "xLSTM[0:1]": 1.00, "xLSTM[1:0]": 0.04, "xLSTM[1:1]": 0.60},
    "parity": {"Llama": 0.03, "xLSTM[0:1]": 1.00, "xLSTM[1:0]": 0.04, "xLSTM[1:1]": 1.00},
    "majority": {"Llama": 0.37, "xLSTM[0:1]": 0.75, "xLSTM[1:0]": 0.74, "xLSTM[1:1]": 0.64},
    "majority_count": {"Llama": 0.13, "xLSTM[0:1]": 0.22, "xLSTM[1:0]": 0.46, "xLSTM[1:1]": 0.50},
    "reverse_string": {"Llama": 0.06, "xLSTM[0:1]": 0.14, "xLSTM[1:0]": 0.22, "xLSTM[1:1]": 0.20},
    "repetition": {"Llama": 0.08, "xLSTM[0:1]": 0.09, "xLSTM[1:0]": 0.28, "xLSTM[1:1]": 0.09},
}

# Figure 11 (MQAR experiment 1): xLSTM[1:0] and xLSTM[1:1] solve (accuracy ~1) every setting at every model
# dimension; the figure gives no table, so 1.0 stands for "solved".
MQAR_SOLVED = {("mqar_64_4", "xLSTM[1:0]"), ("mqar_64_4", "xLSTM[1:1]"), ("mqar_128_8", "xLSTM[1:0]"),
               ("mqar_128_8", "xLSTM[1:1]"), ("mqar_256_16", "xLSTM[1:0]"), ("mqar_256_16", "xLSTM[1:1]"),
               ("mqar_256_16", "Llama")}


def paper_value(task: str, model: str):
    name = MODEL_NAMES.get(model, model)
    if task in FORMAL:
        return FORMAL[task].get(name)
    return 1.0 if (task, name) in MQAR_SOLVED else None
