// Exact byte counts and the reserve graph of a llama.cpp context (issue 23 oracle).
//
// Built against the llama.cpp that llama-cpp-python 0.3.36 vendors (see fixtures/llamacpp/README.md):
//   g++ -O1 -std=c++17 tools/lcpp_bytes.cpp -I$V/include -I$V/src -I$V/ggml/include -I$V/ggml/src \
//       -L/work/venv-lcpp/lib/python3.11/site-packages/llama_cpp/lib -lllama -lggml -lggml-base \
//       -Wl,-rpath,/work/venv-lcpp/lib/python3.11/site-packages/llama_cpp/lib -o /tmp/lcpp_bytes
//
// usage: lcpp_bytes MODEL n_ctx n_batch n_ubatch fa(0/1) type_k type_v n_seq_max kv_unified swa_full mmap [dump]
//   prints "BYTES <buft> model=<> context=<> compute=<>" per buffer type (llama_get_memory_breakdown),
//   and with dump=1 the graph llama.cpp reserves for (n_ubatch tokens, n_seq_max seqs, min(n_ubatch, n_batch) outputs):
//   one line per leaf and per node, in graph order.
#include "llama.h"
#include "llama-ext.h"
#include "ggml.h"
#include "ggml-backend.h"
#include "ggml-impl.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

static ggml_type parse_type(const char * s) {
    static const std::map<std::string, ggml_type> m = {
        {"f32", GGML_TYPE_F32}, {"f16", GGML_TYPE_F16}, {"bf16", GGML_TYPE_BF16}, {"q8_0", GGML_TYPE_Q8_0},
        {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1},
        {"iq4_nl", GGML_TYPE_IQ4_NL}};
    return m.at(s);
}

static void quiet(ggml_log_level level, const char * text, void *) {
    if (level >= GGML_LOG_LEVEL_WARN && level != GGML_LOG_LEVEL_CONT) fputs(text, stderr);
}

static void print_tensor(const char * kind, int i, const ggml_tensor * t) {
    printf("%s %d op=%s name=%s type=%s ne=%lld,%lld,%lld,%lld nb=%zu,%zu,%zu,%zu nbytes=%zu flags=%d ext=%d",
           kind, i, ggml_op_name(t->op), t->name, ggml_type_name(t->type),
           (long long) t->ne[0], (long long) t->ne[1], (long long) t->ne[2], (long long) t->ne[3],
           t->nb[0], t->nb[1], t->nb[2], t->nb[3], ggml_nbytes(t), (int) t->flags,
           (t->buffer != nullptr || t->data != nullptr) ? 1 : 0);
    if (t->view_src) {
        printf(" view_src=%s view_offs=%zu", t->view_src->name, t->view_offs);
    }
    printf(" src=");
    bool first = true;
    for (int j = 0; j < GGML_MAX_SRC; j++) {
        if (t->src[j]) {
            printf("%s%d:%s", first ? "" : "|", j, t->src[j]->name);
            first = false;
        }
    }
    printf(" ptr=%p", (const void *) t);
    for (int j = 0; j < GGML_MAX_SRC; j++) {
        if (t->src[j]) printf(" s%d=%p", j, (const void *) t->src[j]);
    }
    if (t->view_src) printf(" vs=%p", (const void *) t->view_src);
    printf("\n");
}

int main(int argc, char ** argv) {
    if (argc < 12) {
        fprintf(stderr, "usage: %s MODEL n_ctx n_batch n_ubatch fa type_k type_v n_seq_max kv_unified swa_full mmap [dump]\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.load_mode = atoi(argv[11]) ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 3;
    auto cp = llama_context_default_params();
    cp.n_ctx = atoi(argv[2]);
    cp.n_batch = atoi(argv[3]);
    cp.n_ubatch = atoi(argv[4]);
    cp.flash_attn_type = atoi(argv[5]) ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = parse_type(argv[6]);
    cp.type_v = parse_type(argv[7]);
    cp.n_seq_max = atoi(argv[8]);
    cp.kv_unified = atoi(argv[9]) != 0;
    cp.swa_full = atoi(argv[10]) != 0;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) return 4;
    for (const auto & [buft, d] : llama_get_memory_breakdown(ctx)) {
        printf("BYTES %s model=%zu context=%zu compute=%zu\n", ggml_backend_buft_name(buft), d.model, d.context, d.compute);
    }
    if (argc > 12 && atoi(argv[12])) {
        const uint32_t n_ctx = llama_n_ctx(ctx);
        const uint32_t n_ub = std::min(n_ctx, llama_n_ubatch(ctx));
        const uint32_t n_seq = llama_n_seq_max(ctx);
        const uint32_t n_out = std::min(n_ub, llama_n_batch(ctx));
        ggml_cgraph * gf = llama_graph_reserve(ctx, n_ub, n_seq, n_out);
        printf("GRAPH n_tokens=%u n_seqs=%u n_outputs=%u n_nodes=%d n_leafs=%d\n", n_ub, n_seq, n_out, gf->n_nodes, gf->n_leafs);
        for (int i = 0; i < gf->n_leafs; i++) print_tensor("LEAF", i, gf->leafs[i]);
        for (int i = 0; i < gf->n_nodes; i++) print_tensor("NODE", i, gf->nodes[i]);
    }
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
