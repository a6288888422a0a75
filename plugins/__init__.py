"""The built-in plugins, installed as ``taskcodec_plugins``. Each entry point is one package below, and
registers through the same hooks and entry points as a third party's plugin (see pyproject.toml):

  codecs/     classical (JPEG, JPEG 2000, WebP, AVIF, JPEG XL, PNG), learned (CompressAI), compnet_png;
              trained/ is what the codecs of trained models share (checkpoint folders, bitstream, training)
  datasets/   images (folders, Kodak, class folders), fer (FER+, FER2013), lfw, synthetic_faces
  tasks/      expression_cnn (FER classifier), face_embedders (MobileFaceNet, FaceNet)
  metrics/    image (PSNR, MS-SSIM), classification, verification
  faces/      face detection and alignment, shared by the LFW dataset and the embedders
"""
