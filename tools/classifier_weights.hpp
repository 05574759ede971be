#pragma once
// Where FID's feature network comes from: the weights `ddpm classifier train` writes, shipped
// as models/fashion-mnist-classifier.safetensors and installed under share/ddpmcpp/models.
#include <memory>
#include <string>

#include "nn/feature_classifier.hpp"
#include "nn/safetensors.hpp"

namespace ddpm::tools {

// The path `ddpm eval --fid` reads when --classifier is not given: models/... in the current
// directory if it is there, else the installed copy, else the source tree's.
std::string default_classifier_path();

// Reads the weights, naming the file in any error (missing, not safetensors, wrong tensors).
std::unique_ptr<nn::FeatureClassifier> load_classifier(const std::string& path);
// The same from a file already read (`path` names it in errors).
std::unique_ptr<nn::FeatureClassifier> load_classifier(const SafetensorsContents& contents, const std::string& path);

}  // namespace ddpm::tools
