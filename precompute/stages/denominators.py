"""Which images a defence table's accuracy counts, said once for Table IV and the adaptive attacks' table."""

DENOMINATORS = ("accuracy: share of all n test images classified correctly; accuracy_clean_correct: share of the "
                "n_clean_correct images the bare model classifies correctly when clean (the published evaluation's "
                "denominator: an image the model already gets wrong cannot be defended)")
