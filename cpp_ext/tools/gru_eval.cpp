// gru_eval: run a GRU bundle's policy.safetensors over a sequence of float32
// observations, one control tick per row. Used by the Python parity test (C++
// core vs torch); also handy for checking a bundle on a robot computer.
//
//   gru_eval WEIGHTS.safetensors elu|relu|tanh INPUTS.f32 RESETS.u8 OUTPUTS.f32
//
// INPUTS.f32 holds N x input_dim float32 values (row-major, native endianness);
// RESETS.u8 holds N bytes, 1 = reset the hidden state before this row, 0 = keep
// it (the state starts at zeros). OUTPUTS.f32 receives N x output_dim. Prints
// "sha256 <hex>" of the weights file and "rows N".
#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "simreal_rt/file_io.hpp"
#include "simreal_rt/gru.hpp"
#include "simreal_rt/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: gru_eval WEIGHTS.safetensors elu|relu|tanh INPUTS.f32 RESETS.u8 OUTPUTS.f32\n");
    return 2;
  }
  try {
    const std::vector<unsigned char> weights = simreal_rt::read_file_bytes(argv[1]);
    std::printf("sha256 %s\n", simreal_rt::sha256_hex(weights).c_str());
    simreal_rt::GruPolicy gru(simreal_rt::SafetensorsFile::from_bytes(weights), simreal_rt::parse_activation(argv[2]));
    const std::vector<unsigned char> raw = simreal_rt::read_file_bytes(argv[3]);
    const std::vector<unsigned char> resets = simreal_rt::read_file_bytes(argv[4]);
    const size_t row_bytes = gru.input_dim() * sizeof(float);
    if (raw.size() % row_bytes != 0) {
      throw std::runtime_error("inputs are not a whole number of rows of " + std::to_string(gru.input_dim()));
    }
    const size_t rows = raw.size() / row_bytes;
    if (resets.size() != rows) {
      throw std::runtime_error("resets hold " + std::to_string(resets.size()) + " bytes for " +
                               std::to_string(rows) + " input rows");
    }
    std::vector<float> input(gru.input_dim());
    std::vector<float> output(rows * gru.output_dim());
    for (size_t r = 0; r < rows; ++r) {
      if (resets[r] > 1) throw std::runtime_error("resets byte " + std::to_string(r) + " is neither 0 nor 1");
      if (resets[r] == 1) gru.reset();
      // copy instead of casting: the byte buffer carries no float alignment
      std::copy_n(raw.data() + r * row_bytes, row_bytes, reinterpret_cast<unsigned char*>(input.data()));
      gru.evaluate(input.data(), output.data() + r * gru.output_dim());
    }
    std::ofstream out(argv[5], std::ios::binary);
    out.write(reinterpret_cast<const char*>(output.data()), static_cast<std::streamsize>(output.size() * sizeof(float)));
    if (!out) throw std::runtime_error(std::string("cannot write '") + argv[5] + "'");
    std::printf("rows %zu\n", rows);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gru_eval: error: %s\n", error.what());
    return 1;
  }
}
