"""Application pages: dimensionality reduction, features, compression, augmentation, imputation."""
from aeviz.ui import app_augmentation, app_compression, app_features, app_imputation, app_reduction

PAGES = [("reduction", "Dimensionality reduction", "🗺️", app_reduction.render),
         ("features", "Feature extraction", "🔎", app_features.render),
         ("compression", "Compression", "🗜️", app_compression.render),
         ("augmentation", "Data augmentation", "🧬", app_augmentation.render),
         ("imputation", "Imputation", "🩹", app_imputation.render)]
