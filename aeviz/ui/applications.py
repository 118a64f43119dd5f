"""Application pages: dimensionality reduction, features, compression, augmentation, imputation."""
from aeviz.ui import app_augmentation, app_compression, app_features, app_imputation, app_reduction

PAGES = [("reduction", "Dimensionality reduction", ":material/scatter_plot:", app_reduction.render),
         ("features", "Feature extraction", ":material/manage_search:", app_features.render),
         ("compression", "Compression", ":material/compress:", app_compression.render),
         ("augmentation", "Data augmentation", ":material/auto_awesome:", app_augmentation.render),
         ("imputation", "Imputation", ":material/healing:", app_imputation.render)]
