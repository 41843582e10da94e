// rodimus tokenize --tokenizer FILE --input IN.jsonl --output OUT.jsonl [--decode]
//
// Encode: every input line is {"text": "..."}; the output line at the same position is {"ids":
// [...]}. Decode (--decode): every input line is {"ids": [...]}; the output line is {"text":
// "..."}. Errors name the input file and line; an id outside the vocabulary is named, and so is a
// key given twice in one line. The output file is written only when every line succeeded, and then
// all at once (beside it, then renamed). The tokenizer, the input and the output must be regular
// files (a FIFO is refused, not waited on).
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "rodimus/io/atomic_file.hpp"
#include "rodimus/io/json_strict.hpp"
#include "rodimus/io/read_file.hpp"
#include "rodimus/io/tokenizer.hpp"

namespace rodimus::cli {

int run_tokenize(int argc, char** argv) {
  const args a(argc, argv, {"tokenizer", "input", "output"}, {"decode"});
  const std::string tokenizer_path = a.require("tokenizer");
  const std::string input_path = a.require("input");
  const std::string output_path = a.require("output");
  const bool decode = a.has("decode");
  check_output_path(output_path);

  const io::tokenizer tok =
      io::tokenizer::from_json_text(io::read_regular_file(tokenizer_path), tokenizer_path);
  std::istringstream in(io::read_regular_file(input_path));

  std::string out;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = input_path + ":" + std::to_string(line_no);
    // Strict: a duplicate key ({"text": "a", "text": "b"}) is an error, not the last one silently.
    const nlohmann::json j =
        io::detail::parse_json_strict(line.data(), line.data() + line.size(), where, "line", 64);
    if (!j.is_object())
      throw error(where + ": expected a JSON object, found " + std::string(j.type_name()));
    if (decode) {
      auto it = j.find("ids");
      if (it == j.end() || !it->is_array()) throw error(where + ": expected {\"ids\": [integers]}");
      std::vector<std::int32_t> ids;
      ids.reserve(it->size());
      for (std::size_t k = 0; k < it->size(); ++k) {
        const nlohmann::json& v = (*it)[k];
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
            v.get<std::int64_t>() >= tok.vocab_size()) {
          throw error(where + ": ids[" + std::to_string(k) + "] = " + v.dump() +
                      " is not a token id (expected 0 <= id < " + std::to_string(tok.vocab_size()) +
                      ")");
        }
        ids.push_back(std::int32_t(v.get<std::int64_t>()));
      }
      std::string text;
      try {
        text = tok.decode(ids);
      } catch (const error& e) {
        throw error(where + ": " + e.what());
      }
      out += nlohmann::json{{"text", text}}.dump();
    } else {
      auto it = j.find("text");
      if (it == j.end() || !it->is_string()) throw error(where + ": expected {\"text\": string}");
      std::vector<std::int32_t> ids;
      try {
        ids = tok.encode(it->get_ref<const std::string&>());
      } catch (const error& e) {
        throw error(where + ": " + e.what());
      }
      out += "{\"ids\":[";
      for (std::size_t k = 0; k < ids.size(); ++k) {
        if (k) out += ',';
        out += std::to_string(ids[k]);
      }
      out += "]}";
    }
    out += '\n';
  }
  io::atomic_file o(output_path); // all at once: a failed write leaves an old output as it was
  o.write(out);
  o.commit();
  return 0;
}

} // namespace rodimus::cli
