"""Drives pht-train-container-library 2.0.5 on a train directory, without Docker.

The reference's pre_run_protocol/post_run_protocol move files in and out of images; everything
else they do is done here with the reference's own objects and methods, in the same order:

  prerun  DIR STATION KEY   decrypt_symmetric_key, decrypt_immutable_files,
                            validate_immutable_files, verify_digital_signature,
                            decrypt results, validate_previous_results; write plaintext back
  postrun DIR STATION KEY   _post_run_outside_container, encrypt_immutable_files; write back
  results DIR KEY OUT       the creator: unwrap creator.encrypted_key and decrypt pht_results
"""
import io
import json
import os
import sys

from loguru import logger

# The reference logs plaintext previews at DEBUG; keep its output to warnings.
logger.remove()
logger.add(sys.stderr, level="WARNING")

from train_lib.security.encryption import FileEncryptor
from train_lib.security.key_manager import KeyManager
from train_lib.security.protocol import SecurityProtocol
from train_lib.security.train_config import TrainConfig


def walk(root):
    """Regular files below root in Docker archive order (depth first, names sorted)."""
    out = []
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        if os.path.isdir(p):
            out.extend(os.path.join(name, c) for c in walk(p))
        else:
            out.append(name)
    return out


def load(d):
    with open(os.path.join(d, "train_config.json")) as f:
        return TrainConfig(**json.load(f))


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data):
    with open(p, "wb") as f:
        f.write(data)


def train_files(d):
    names = [n for n in walk(os.path.join(d, "pht_train")) if n != "query.json"]
    qp = os.path.join(d, "pht_train", "query.json")
    query = read(qp) if os.path.exists(qp) else None
    return names, query


def prerun(d, station, key):
    config = load(d)
    sp = SecurityProtocol(station, config)
    sym = sp.key_manager.decrypt_symmetric_key(sp.route_stop.encrypted_key, private_key_path=key)
    names, query = train_files(d)
    enc = [io.BytesIO(read(os.path.join(d, "pht_train", n))) for n in names]
    plain, query_plain = sp.decrypt_immutable_files(enc, sym, query)
    sp.validate_immutable_files(files=plain, immutable_file_names=names,
                                ordered_file_list=config.file_list, query=query_plain)
    for n, f in zip(names, plain):
        f.seek(0)
        write(os.path.join(d, "pht_train", n), f.read())
    if query_plain is not None:
        write(os.path.join(d, "pht_train", "query.json"), query_plain)
    if not sp._is_first_station_on_route():
        sp.verify_digital_signature()
        rnames = walk(os.path.join(d, "pht_results"))
        rfiles = [io.BytesIO(read(os.path.join(d, "pht_results", n))) for n in rnames]
        dec = FileEncryptor(sym).decrypt_files(rfiles, binary_files=True)
        sp.validate_previous_results(files=dec)
        for n, f in zip(rnames, dec):
            f.seek(0)
            write(os.path.join(d, "pht_results", n), f.read())


def postrun(d, station, key):
    config = load(d)
    sp = SecurityProtocol(station, config)
    rnames = walk(os.path.join(d, "pht_results"))
    rfiles = [io.BytesIO(read(os.path.join(d, "pht_results", n))) for n in rnames]
    enc_results, sym = sp._post_run_outside_container(rfiles, key)
    for n, f in zip(rnames, enc_results):
        f.seek(0)
        write(os.path.join(d, "pht_results", n), f.read())
    names, query = train_files(d)
    plain = [io.BytesIO(read(os.path.join(d, "pht_train", n))) for n in names]
    enc, enc_query = sp.encrypt_immutable_files(plain, sym, query)
    for n, f in zip(names, enc):
        f.seek(0)
        write(os.path.join(d, "pht_train", n), f.read())
    if enc_query is not None:
        write(os.path.join(d, "pht_train", "query.json"), enc_query)
    write(os.path.join(d, "train_config.json"), sp.config.json(indent=2, by_alias=True).encode())
    write(os.path.join(d, "user_sym_key.key"), bytes.fromhex(sp.config.creator.encrypted_key))


def results(d, key, out):
    config = load(d)
    km = KeyManager(config)
    sym = km.decrypt_symmetric_key(config.creator.encrypted_key, private_key_path=key)
    fe = FileEncryptor(sym)
    for n in walk(os.path.join(d, "pht_results")):
        p = os.path.join(out, n)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write(p, fe.decrypt(read(os.path.join(d, "pht_results", n))))


if __name__ == "__main__":
    cmd = sys.argv[1]
    {"prerun": prerun, "postrun": postrun, "results": results}[cmd](*sys.argv[2:])
