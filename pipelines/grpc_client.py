"""Call a model served by TensorFlow Serving over gRPC (port 8500).

    pip install tensorflow-serving-api grpcio
    python pipelines/grpc_client.py --model quickstart-sentiment "I really hated the atmosphere ."
    python pipelines/grpc_client.py --model quickstart-ner --host myserver:8500 "Vim Sokirani ."

Sends the texts to the `serving_default` signature (serve_text: strings in) and prints every
output tensor. Needs only TensorFlow (for the tensor protos), grpcio and the serving APIs.
"""

import argparse

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def predict(host: str, model: str, texts: list[str], signature: str = "serving_default",
            timeout: float = 10.0) -> dict:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(host))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
    response = stub.Predict(request, timeout=timeout)
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("texts", nargs="+")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="localhost:8500")
    args = parser.parse_args()
    for name, value in predict(args.host, args.model, args.texts).items():
        print(name, value.tolist())
