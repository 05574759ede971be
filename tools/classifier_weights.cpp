#include "tools/classifier_weights.hpp"

#include <filesystem>
#include <map>
#include <stdexcept>


namespace ddpm::tools {

std::string default_classifier_path() {
  const std::string relative = "models/fashion-mnist-classifier.safetensors";
  for (const std::string& candidate : {relative, std::string(DDPM_INSTALLED_MODELS "/fashion-mnist-classifier.safetensors"),
                                       std::string(DDPM_SOURCE_MODELS "/fashion-mnist-classifier.safetensors")})
    if (std::filesystem::exists(candidate)) return candidate;
  return relative;  // the error then names the path a user would expect
}

std::unique_ptr<nn::FeatureClassifier> load_classifier(const std::string& path) {
  return load_classifier(read_safetensors(path), path);
}

std::unique_ptr<nn::FeatureClassifier> load_classifier(const SafetensorsContents& contents, const std::string& path) {
  Generator init(0);
  auto model = std::make_unique<nn::FeatureClassifier>(init);
  try {
    model->load_state_dict(std::map<std::string, Tensor>(contents.tensors.begin(), contents.tensors.end()));
  } catch (const std::exception& error) {
    throw std::runtime_error(path + ": not the feature classifier's weights (ddpm classifier train writes them): " + error.what());
  }
  model->eval();
  return model;
}

}  // namespace ddpm::tools
